"""The review desk's storage: one SQLite file holding scored comments and moderators' decisions.

The file is opened in WAL mode with ``synchronous=FULL``: every write is committed (and on disk)
before the function returns, so a decision acknowledged to the browser survives a crash or a
restart. Comments are keyed by their ``id``; scoring a comment again updates its scores and keeps
its decision. Every decision is also appended to a ``decisions`` log.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..errors import DataError, OutputError

SCHEMA_VERSION = 1
#: comment states: waiting for a moderator, label confirmed, label changed, could not be scored
STATUSES = ("pending", "accepted", "corrected", "error")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS comments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    text TEXT,
    article_id TEXT,
    article TEXT,
    target TEXT,
    target_resolved INTEGER,
    parent_id TEXT,
    parent_text TEXT,
    author TEXT,
    label TEXT,
    confidence REAL,
    probabilities TEXT,
    needs_review INTEGER,
    review_reason TEXT,
    model TEXT,
    error TEXT,
    source TEXT,
    status TEXT NOT NULL,
    decision TEXT,
    decided_at TEXT,
    scored_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS comments_queue ON comments (status, confidence);
CREATE INDEX IF NOT EXISTS comments_article ON comments (article_id);
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    label TEXT NOT NULL,
    model_label TEXT,
    action TEXT NOT NULL,
    at TEXT NOT NULL
);
"""

_FIELDS = ("id", "text", "article_id", "article", "target", "target_resolved", "parent_id", "parent_text",
           "author", "label", "confidence", "probabilities", "needs_review", "review_reason", "model", "error",
           "source", "status", "decision", "decided_at", "scored_at")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class ReviewStore:
    """Scored comments and decisions in one SQLite file (``":memory:"`` for a throwaway desk)."""

    def __init__(self, path: str | Path = ":memory:"):
        self.path = str(path)
        if self.path != ":memory:":
            folder = Path(self.path).parent
            if not folder.is_dir():
                raise OutputError(f"{folder}: no such folder for the review database", "create it or pass another --db")
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            found = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{self.path}: not a review database ({exc})",
                            "pass a new file name with --db, or the file an earlier 'stance serve' wrote") from None
        if found is None:
            self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif found[0] != str(SCHEMA_VERSION):
            raise DataError(f"{self.path}: review database version {found[0]}, this version reads {SCHEMA_VERSION}",
                            "export its decisions with the version that wrote it, or start a new --db")
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def ping(self) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1").fetchone()[0] == 1

    # -- writing -------------------------------------------------------------------------------
    def add(self, rows: Iterable[dict[str, Any]]) -> int:
        """Insert scored comments (or update the scores of known ids, keeping their decisions).

        One transaction: when it returns, every row is on disk."""
        now = _now()
        records = []
        for row in rows:
            record = {name: row.get(name) for name in _FIELDS}
            record["probabilities"] = json.dumps(row.get("probabilities") or {})
            record["status"] = "error" if row.get("error") else "pending"
            record["scored_at"] = now
            for flag in ("needs_review", "target_resolved"):
                if record[flag] is not None:
                    record[flag] = int(bool(record[flag]))
            records.append(record)
        if not records:
            return 0
        names = ", ".join(_FIELDS)
        marks = ", ".join(f":{n}" for n in _FIELDS)
        rescored = ", ".join(f"{n}=excluded.{n}" for n in _FIELDS if n not in ("id", "status", "decision", "decided_at"))
        # a decided comment keeps its decision; an error row that now scores becomes pending
        sql = (f"INSERT INTO comments ({names}) VALUES ({marks}) ON CONFLICT(id) DO UPDATE SET {rescored}, "
               "status=CASE WHEN comments.decision IS NULL THEN excluded.status ELSE comments.status END")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(sql, records)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(records)

    def decide(self, comment_id: str, label: str | None) -> dict[str, Any]:
        """Record a moderator's decision: ``label=None`` accepts the model's label.

        Committed before returning; raises :class:`KeyError` for an unknown id and
        :class:`ValueError` for a comment that could not be scored."""
        with self._lock:
            found = self._db.execute("SELECT * FROM comments WHERE id=?", (comment_id,)).fetchone()
            if found is None:
                raise KeyError(comment_id)
            if found["label"] is None:
                raise ValueError(found["error"] or "the comment has no model label")
            chosen = label if label is not None else found["label"]
            status = "accepted" if chosen == found["label"] else "corrected"
            now = _now()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("UPDATE comments SET decision=?, status=?, decided_at=? WHERE id=?",
                                 (chosen, status, now, comment_id))
                self._db.execute("INSERT INTO decisions (id, label, model_label, action, at) VALUES (?, ?, ?, ?, ?)",
                                 (comment_id, chosen, found["label"], status, now))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            row = self._db.execute("SELECT * FROM comments WHERE id=?", (comment_id,)).fetchone()
        return self._record(row)

    # -- reading -------------------------------------------------------------------------------
    def get(self, comment_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM comments WHERE id=?", (comment_id,)).fetchone()
        return None if row is None else self._record(row)

    def texts(self, ids: Sequence[str]) -> dict[str, str]:
        """Texts of stored comments by id (to show and score replies with their parent)."""
        wanted = sorted({i for i in ids if i})
        found: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                part = wanted[start:start + 500]
                marks = ",".join("?" * len(part))
                for row in self._db.execute(f"SELECT id, text FROM comments WHERE id IN ({marks})", part):
                    if row["text"] is not None:
                        found[row["id"]] = row["text"]
        return found

    def queue(self, *, status: str = "pending", article: str | None = None, label: str | None = None,
              limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Comments in review order (least confident first) and how many match in all.

        ``status`` is one of :data:`STATUSES` or ``all``/``decided``; ``label`` filters on the
        decided label when there is one, else on the model's."""
        where, args = [], []
        if status == "decided":
            where.append("status IN ('accepted', 'corrected')")
        elif status != "all":
            where.append("status = ?")
            args.append(status)
        if article is not None:
            where.append("article_id IS ?")
            args.append(article)
        if label is not None:
            where.append("COALESCE(decision, label) = ?")
            args.append(label)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        order = "seq" if status == "error" else "confidence IS NULL, confidence, seq"
        with self._lock:
            total = self._db.execute(f"SELECT COUNT(*) FROM comments {clause}", args).fetchone()[0]
            rows = self._db.execute(f"SELECT * FROM comments {clause} ORDER BY {order} LIMIT ? OFFSET ?",
                                    [*args, limit, offset]).fetchall()
        return [self._record(r) for r in rows], total

    def counts(self) -> list[dict[str, Any]]:
        """Per article: comments per stance (the decided label where there is one), pending and errors."""
        sql = ("SELECT article_id, MAX(article) AS article, COALESCE(decision, label) AS stance, status, COUNT(*) AS n "
               "FROM comments GROUP BY article_id, stance, status")
        articles: dict[Any, dict[str, Any]] = {}
        with self._lock:
            rows = self._db.execute(sql).fetchall()
        for row in rows:
            entry = articles.setdefault(row["article_id"], {"article_id": row["article_id"], "article": None,
                                                            "stances": {}, "pending": 0, "decided": 0, "errors": 0,
                                                            "total": 0})
            entry["article"] = entry["article"] or row["article"]
            entry["total"] += row["n"]
            if row["status"] == "error":
                entry["errors"] += row["n"]
                continue
            entry["stances"][row["stance"]] = entry["stances"].get(row["stance"], 0) + row["n"]
            entry["pending" if row["status"] == "pending" else "decided"] += row["n"]
        return sorted(articles.values(), key=lambda e: (e["article_id"] is None, str(e["article_id"])))

    def articles(self) -> list[str | None]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT DISTINCT article_id FROM comments ORDER BY article_id")]

    def decided(self, *, only_corrected: bool = False) -> Iterator[dict[str, Any]]:
        """Decided comments, in the order they were first stored (for the training export)."""
        states = "('corrected')" if only_corrected else "('accepted', 'corrected')"
        with self._lock:
            rows = self._db.execute(f"SELECT * FROM comments WHERE status IN {states} ORDER BY seq").fetchall()
        for row in rows:
            yield self._record(row)

    def summary(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM comments GROUP BY status").fetchall()
        found = {status: 0 for status in STATUSES}
        found.update({r[0]: r[1] for r in rows})
        return found

    @staticmethod
    def _record(row: sqlite3.Row) -> dict[str, Any]:
        record = dict(row)
        record.pop("seq", None)
        record["probabilities"] = json.loads(record["probabilities"] or "{}")
        for flag in ("needs_review", "target_resolved"):
            if record[flag] is not None:
                record[flag] = bool(record[flag])
        return record


def training_record(record: dict[str, Any]) -> dict[str, Any]:
    """One line of the training export: what ``stance train`` reads, plus where the label came from."""
    return {"id": record["id"], "text": record["text"], "label": record["decision"], "target": record["target"],
            "article_id": record["article_id"], "parent_id": record["parent_id"], "author": record["author"],
            "model_label": record["label"], "model_confidence": record["confidence"], "decision": record["status"],
            "decided_at": record["decided_at"]}
