"""The service's one translation into and out of the scoring core.

Request records become a :class:`comment_stance.readers.CommentChunk`, the chunk goes through
:func:`comment_stance.scoring.score_columns` (the core of ``score_chunk``, which ``stance predict``
uses, without the pandas table that would cost more than the model on a handful of comments), and
the scored rows are translated back. Labels, confidence and review flags come from the core only:
whatever review columns it adds (``needs_review``, ``review_reason``) are passed on as they are.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

from ..readers import CANONICAL, CommentChunk
from ..scoring import proba_column, score_columns
from .targets import TargetMap

if TYPE_CHECKING:
    from ..models.base import StanceModel
    from .store import ReviewStore

#: core columns translated into fields of their own; every other core column is passed on by name
_CORE = {"id", "label", "confidence", "error"}
#: review columns the response always has (``None`` while the core does not produce them)
REVIEW_FIELDS = ("needs_review", "review_reason")


class _Parents:
    """Stands in for the core's recent-comments memory: parents given in the request, parents in
    the same batch, and parents stored on the review desk."""

    def __init__(self, known: dict[str, str]):
        self.known = known

    def add(self, ids: list, texts: list) -> None:
        for key, text in zip(ids, texts):
            if key is not None and isinstance(text, str):
                self.known.setdefault(key, text)

    def get(self, key: str | None) -> str | None:
        return None if key is None else self.known.get(key)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _plain_column(values: Any) -> list[Any]:
    """A core column as plain Python values (JSON-ready), NaN as ``None``."""
    return [_plain(v) for v in (values.tolist() if hasattr(values, "tolist") else values)]


class Scorer:
    """Scores canonical comment records (dicts with ``id``, ``text``, ``target``, ``article_id``,
    ``parent_id``, ``parent_text``...) with one call of the scoring core."""

    def __init__(self, model: "StanceModel", *, targets: TargetMap, review_below: float | None,
                 store: "ReviewStore | None" = None):
        self.model = model
        self.targets = targets
        self.review_below = review_below
        self.store = store
        self.labels = [str(c) for c in model.classes_]

    def resolve(self, record: dict[str, Any]) -> dict[str, Any]:
        """Fill in ``target`` from the mapping; keep what the comment said as ``article``."""
        given = record.get("target")
        target = self.targets.resolve(record.get("article_id"), given)
        return {**record, "article": record.get("article") or given, "target": target,
                "target_resolved": target is not None}

    def __call__(self, records: Sequence[dict[str, Any]], errors: Sequence[str | None] | None = None,
                 lines: Sequence[int] | None = None) -> list[dict[str, Any]]:
        n = len(records)
        resolved = [self.resolve(r) for r in records]
        known: dict[str, str] = {}
        parent_keys: list[str | None] = []
        for i, record in enumerate(resolved):
            if record.get("parent_text"):
                key = f"\x00parent-{i}"  # the text came with the comment: look it up under a key of its own
                known[key] = record["parent_text"]
                parent_keys.append(key)
            else:
                parent_keys.append(record.get("parent_id"))
        if self.store is not None:
            in_batch = {r.get("id") for r in resolved}
            wanted = [p for p, r in zip(parent_keys, resolved)
                      if p is not None and not r.get("parent_text") and p not in in_batch]
            if wanted:
                known.update(self.store.texts(wanted))
        columns = {name: [r.get(name) for r in resolved] for name in CANONICAL}
        columns["parent_id"] = parent_keys
        chunk = CommentChunk(columns, list(lines) if lines is not None else list(range(1, n + 1)),
                             list(errors) if errors is not None else [None] * n)
        scored = score_columns(self.model, chunk, review_below=self.review_below, recent=_Parents(known), review=True)
        probas = [proba_column(label) for label in self.labels]
        extra = [c for c in scored if c not in _CORE and c not in probas]
        plain = {name: _plain_column(values) for name, values in scored.items()}
        out = []
        for i in range(n):
            record = resolved[i]
            parent_text = (record.get("parent_text") or known.get(parent_keys[i])) if parent_keys[i] else None
            result = {
                "id": record.get("id"),
                "label": plain["label"][i],
                "confidence": plain["confidence"][i],
                "probabilities": {label: plain[p][i] for label, p in zip(self.labels, probas)},
                **{name: None for name in REVIEW_FIELDS},
                **{name: plain[name][i] for name in extra},
                "target": record["target"],
                "target_resolved": record["target_resolved"],
                "error": plain["error"][i],
                # carried for the review desk, not part of the score
                "text": record.get("text"), "article_id": record.get("article_id"), "article": record.get("article"),
                "parent_id": record.get("parent_id"), "parent_text": parent_text, "author": record.get("author"),
            }
            if result["label"] is None:
                result["probabilities"] = {}
            out.append(result)
        return out
