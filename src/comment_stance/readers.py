"""Streaming readers for comment exports: tables (CSV/TSV, JSONL, Parquet) and platform formats
(Disqus XML, WordPress WXR, Reddit NDJSON, a plain-text article page with its "N Comments" part).

Every reader yields :class:`CommentChunk` objects of at most ``chunk_size`` canonical comment
records, so memory stays flat however large the file is::

    >>> from comment_stance.readers import read_chunks
    >>> for chunk in read_chunks("tests/fixtures/exports/disqus.xml"):
    ...     print(chunk.columns["id"], chunk.errors)
    ['5001', '5002', '5003'] [None, None, 'line 50: comment deleted on Disqus (no text to score)']

A record has the fields in :data:`CANONICAL` (``id``, ``parent_id``, ``author``, ``created_at``,
``text``, ``article_id`` for the thread or article, ``target`` for its title) plus any columns
asked for with ``keep``; it knows the line (or Parquet row) it came from. A row that cannot be
scored (empty or undecodable text, a malformed JSON line, a CSV row with the wrong number of
fields, a field over the length limit) is still yielded, with its problem in ``errors``: nothing
in an export is dropped silently. A file that is broken as a whole (malformed XML, a missing text
column, an XML entity-expansion payload) raises :class:`~comment_stance.errors.DataError`
naming the line.
"""

from __future__ import annotations

import csv
import html
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .data import Columns
from .errors import DataError

#: the fields of a canonical comment record, in output order
CANONICAL = ("id", "parent_id", "author", "created_at", "text", "article_id", "target")
#: input formats :func:`read_chunks` understands
INPUT_FORMATS = ("csv", "tsv", "jsonl", "parquet", "disqus", "wordpress", "reddit", "article")
#: default longest field, in characters; longer fields make their row an error row
MAX_CHARS = 100_000
#: an article page is read whole, so it has a size limit
MAX_ARTICLE_BYTES = 50 * 1024 * 1024
#: a JSON line longer than this becomes an error row without being held in memory
MAX_LINE_BYTES = 64 * 1024 * 1024

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xml": "xml",
    ".txt": "article",
}
_COMMENTS_HEADER = re.compile(r"^\s*(\d[\d,.]*)\s+comments?\s*$", re.IGNORECASE)
_SURROGATE = re.compile("[\udc80-\udcff]")
_TAG = re.compile(r"<[^>]*>")
_BREAK = re.compile(r"<\s*(br|/p|/div|/li|/blockquote)\b[^>]*>", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\f\v]+")


@dataclass
class CommentChunk:
    """Up to ``chunk_size`` comment records, column by column.

    ``columns`` maps each canonical field (and each kept column) to a list of values;
    ``lines`` holds where each record starts in the file (``unit`` says whether that is a
    ``line`` or a Parquet ``row``); ``errors`` holds why a record cannot be scored, or ``None``;
    ``progress`` is the share of the file read so far (``None`` when unknown).
    """

    columns: dict[str, list]
    lines: list[int]
    errors: list[str | None]
    unit: str = "line"
    progress: float | None = None

    def __len__(self) -> int:
        return len(self.lines)

    def tail(self, start: int) -> "CommentChunk":
        """The records from position ``start`` on (used to skip rows already scored on --resume)."""
        return CommentChunk({k: v[start:] for k, v in self.columns.items()}, self.lines[start:],
                            self.errors[start:], self.unit, self.progress)

    def to_frame(self):
        """The records as a :class:`pandas.DataFrame`, with ``line`` and ``error`` columns."""
        import pandas as pd

        frame = pd.DataFrame(self.columns)
        frame[self.unit] = self.lines
        frame["error"] = self.errors
        return frame


# -- format detection ---------------------------------------------------------------------------
def detect_format(path: str | Path, forced: str | None = None) -> str:
    """The input format of ``path``: ``forced`` when given, else from the extension and content.

    >>> detect_format("tests/fixtures/exports/reddit.ndjson")       # doctest: +SKIP
    'reddit'
    """
    path = Path(path)
    if forced is not None:
        if forced not in INPUT_FORMATS:
            raise DataError(f"unknown input format '{forced}'", f"use one of: {', '.join(INPUT_FORMATS)}")
        return forced
    if not path.is_file():
        raise DataError(f"{path}: no such file", "check the path")
    with open(path, "rb") as handle:
        head = handle.read(64 * 1024)
    kind = _EXTENSIONS.get(path.suffix.lower())
    if kind in ("csv", "tsv", "parquet"):
        return kind
    if kind is None:
        kind = _sniff(head)
        if kind is None:
            raise DataError(f"{path}: cannot tell the format from the extension '{path.suffix or '(none)'}' "
                            "or the content", f"pass --format (one of: {', '.join(INPUT_FORMATS)})")
        if kind in ("csv", "tsv", "parquet"):
            return kind
    if kind == "xml":
        return _xml_kind(path, head)
    if kind == "jsonl":
        if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
            raise DataError(f"{path}: one JSON array, not JSON lines",
                            "write one JSON object per line (e.g. jq -c '.[]' FILE > FILE.jsonl)")
        return "reddit" if _looks_like_reddit(head) else "jsonl"
    return kind  # article


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"PAR1"):
        return "parquet"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        return "xml"
    if text.startswith(b"{"):
        return "jsonl"
    decoded = head.decode("utf-8", errors="replace")
    if any(_COMMENTS_HEADER.match(line) for line in decoded.splitlines()):
        return "article"
    first = decoded.splitlines()[0] if decoded else ""
    if "\t" in first:
        return "tsv"
    if "," in first:
        return "csv"
    return None


def _xml_kind(path: Path, head: bytes) -> str:
    if b"<disqus" in head:
        return "disqus"
    if b"wordpress.org/export/" in head:
        return "wordpress"
    raise DataError(f"{path}: an XML file that is neither a Disqus export nor a WordPress WXR export",
                    "pass --format disqus or --format wordpress if it is one")


def _looks_like_reddit(head: bytes) -> bool:
    for line in head.splitlines():
        if line.strip():
            try:
                record = json.loads(line)
            except ValueError:
                return False
            if isinstance(record, dict) and record.get("kind") == "t1" and isinstance(record.get("data"), dict):
                record = record["data"]
            return isinstance(record, dict) and "body" in record and ("link_id" in record or "parent_id" in record)
    return False


# -- the one entry point --------------------------------------------------------------------------
def read_chunks(
    path: str | Path,
    *,
    format: str | None = None,
    columns: Columns | None = None,
    keep: Sequence[str] = (),
    chunk_size: int = 10_000,
    max_chars: int = MAX_CHARS,
) -> Iterator[CommentChunk]:
    """Stream the comments of ``path`` as chunks of canonical records, in file order.

    ``format`` forces the input format (see :data:`INPUT_FORMATS`); ``columns`` names the
    source columns of table formats (CSV/TSV/JSONL/Parquet); ``keep`` names extra columns to
    carry along (a canonical field or, for tables and JSON lines, a source column).

    >>> chunks = read_chunks("tests/fixtures/exports/comments.csv", chunk_size=2)
    >>> [len(c) for c in chunks]
    [2, 2, 1]
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file", "check the path")
    if chunk_size < 1:
        raise DataError(f"chunk size {chunk_size} is too small", "use a chunk size of at least 1")
    fmt = detect_format(path, format)
    columns = columns or Columns()
    keep = list(dict.fromkeys(keep))
    readers: dict[str, Callable[..., Iterator[list]]] = {
        "csv": _delimited_records, "tsv": _delimited_records, "jsonl": _jsonl_records,
        "reddit": _jsonl_records, "parquet": _parquet_records, "disqus": _disqus_records,
        "wordpress": _wordpress_records, "article": _article_records,
    }
    source = readers[fmt](path, fmt=fmt, columns=columns, keep=keep, chunk_size=chunk_size)
    unit = "row" if fmt == "parquet" else "line"
    batch = _Batch(_extra(keep), unit, max_chars)
    for record, progress in source:
        batch.add(*record)
        if len(batch) >= chunk_size:
            yield batch.emit(progress)
    if len(batch):
        yield batch.emit(1.0)


def _extra(keep: Sequence[str]) -> list[str]:
    """Kept columns that are not canonical fields (those are in every chunk anyway)."""
    return [name for name in keep if name not in CANONICAL]


class _Batch:
    """Collects records and validates them, column by column, into a :class:`CommentChunk`."""

    def __init__(self, keep: list[str], unit: str, max_chars: int):
        self.keep = keep
        self.unit = unit
        self.max_chars = max_chars
        self._reset()

    def _reset(self) -> None:
        self.columns: dict[str, list] = {name: [] for name in (*CANONICAL, *self.keep)}
        self._canonical = [(name, self.columns[name]) for name in CANONICAL]
        self._kept = [self.columns[name] for name in self.keep]
        self.lines: list[int] = []
        self.errors: list[str | None] = []

    def __len__(self) -> int:
        return len(self.lines)

    def add(self, line: int, fields: dict[str, Any], kept: list, error: str | None) -> None:
        """``fields``: canonical values; ``kept``: values of the non-canonical kept columns;
        ``error``: a problem found while parsing (the record is still kept)."""
        get = fields.get
        for name, column in self._canonical:
            column.append(get(name))
        for column, value in zip(self._kept, kept):
            column.append(value)
        self.lines.append(line)
        self.errors.append(error)

    def emit(self, progress: float | None) -> CommentChunk:
        columns, lines = self.columns, self.lines
        problems = {i: error for i, error in enumerate(self.errors) if error is not None}
        # every record has a string id: its own, or the line it starts on
        columns["id"] = [v if type(v) is str and v else str(line) if v is None or v == "" else str(v)
                         for v, line in zip(columns["id"], lines)]
        for name in ("parent_id", "author", "created_at", "article_id", "target"):
            values = columns[name]
            if any(v is not None and type(v) is not str for v in values):
                columns[name] = [v if v is None or type(v) is str else str(v) for v in values]
        self._repair_encoding(problems)
        for i, text in enumerate(columns["text"]):
            if type(text) is str and text and not text.isspace() or i in problems:
                continue
            problems[i] = ("no comment text" if text is None else "empty text" if isinstance(text, str)
                           else f"text is {type(text).__name__}, not a string")
        limit = self.max_chars
        for name, values in columns.items():
            for i in [i for i, v in enumerate(values) if type(v) is str and len(v) > limit]:
                problems.setdefault(i, f"{name} is {len(values[i])} characters, over the limit of {limit}")
                values[i] = values[i][:limit]  # the output holds at most the limit
        errors = [None] * len(lines)
        for i, problem in problems.items():
            errors[i] = f"{self.unit} {lines[i]}: {problem}"
        chunk = CommentChunk(columns, lines, errors, self.unit, progress)
        self._reset()
        return chunk

    def _repair_encoding(self, problems: dict[int, str]) -> None:
        """Bytes that are not UTF-8 arrive as lone surrogates (``surrogateescape``): such a row is
        an error row, and its fields are repaired (U+FFFD) so that every output format can hold
        them. One regex over the joined chunk keeps the common, clean case cheap."""
        joined = "\x00".join(x for col in self.columns.values() for x in col if type(x) is str)
        if not _SURROGATE.search(joined):
            return
        for values in self.columns.values():
            for i, value in enumerate(values):
                if type(value) is str and _SURROGATE.search(value):
                    values[i] = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                    problems.setdefault(i, "bytes that are not UTF-8 (re-save the file as UTF-8)")


# -- tables -----------------------------------------------------------------------------------------
def _table_sources(columns: Columns) -> dict[str, str]:
    """Canonical field -> source column name, for table formats."""
    return {
        "id": columns.id, "parent_id": columns.parent_id, "author": columns.author, "created_at": "created_at",
        "text": columns.text, "article_id": columns.article_id, "target": columns.target,
    }


def _check_header(path: Path, header: list[str], sources: dict[str, str], keep: list[str]) -> None:
    if sources["text"] not in header:
        found = ", ".join(header) or "none"
        raise DataError(f"{path}: missing column '{sources['text']}' (columns found: {found})",
                        "rename the column or pass --text-col NAME")
    for name in keep:
        if name != "id" and name not in header and not (name in CANONICAL and sources[name] in header):
            found = ", ".join(header) or "none"
            raise DataError(f"{path}: --keep names column '{name}', which the file does not have (columns: {found})",
                            "keep only columns the file has")


def _delimited_records(path: Path, *, fmt: str, columns: Columns, keep: list[str], chunk_size: int):
    sources = _table_sources(columns)
    delimiter = "," if fmt == "csv" else "\t"
    size = path.stat().st_size or 1
    # the csv module's own cap (process-wide) bounds memory; --max-chars is checked per field later
    csv.field_size_limit(max(csv.field_size_limit(), 64 * 1024 * 1024))
    with open(path, "rb") as binary:
        text = _text_stream(binary)
        reader = csv.reader(text, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{path}: the file is empty", "a CSV/TSV file needs a header row naming its columns") from None
        except csv.Error as exc:
            raise DataError(f"{path}: line 1: cannot read the header ({exc})", "check the file's quoting") from None
        header = [h.strip() for h in header]
        _check_header(path, header, sources, keep)
        index = {name: i for i, name in enumerate(header)}
        width = len(header)
        canonical = [(field, index[src]) for field, src in sources.items() if src in index]
        extra = _extra(keep)
        kept_at = [index[name] for name in extra]
        last = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:  # a field over the hard size limit: the reader resumes after it
                start = last + 1
                last = reader.line_num
                yield (start, {}, [None] * len(extra), f"cannot parse ({exc})"), binary.tell() / size
                continue
            start = last + 1
            if reader.line_num - last > 1:  # the record spans lines, or blank lines preceded it
                start = reader.line_num - sum(f.count("\n") + f.count("\r") - f.count("\r\n") for f in row)
            last = reader.line_num
            if not row:  # a blank line is no record
                continue
            if len(row) != width:
                error = f"{len(row)} fields where the header has {width} (check quoting and delimiters)"
                fields = {"id": row[index[sources["id"]]]} if sources["id"] in index and len(row) > index[sources["id"]] else {}
                yield (start, fields, [None] * len(extra), error), binary.tell() / size
                continue
            fields = {field: (row[i] or None) if field != "text" else row[i] for field, i in canonical}
            yield (start, fields, [row[i] for i in kept_at], None), binary.tell() / size


def _text_stream(binary):
    import io

    # surrogateescape: a row with bytes that are not UTF-8 becomes an error row, not a crash
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _lines(path: Path, max_bytes: int) -> Iterator[tuple[int, bytes | None, float]]:
    """Non-blank lines as (number, bytes, progress); a line over ``max_bytes`` comes as ``None``
    and is skipped without being held in memory."""
    size = path.stat().st_size or 1
    with open(path, "rb") as handle:
        number = 0
        while True:
            line = handle.readline(max_bytes + 1)
            if not line:
                return
            number += 1
            if len(line) > max_bytes and not line.endswith(b"\n"):
                while line and not line.endswith(b"\n"):
                    line = handle.readline(1 << 20)
                yield number, None, handle.tell() / size
                continue
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            if line.strip():
                yield number, line, handle.tell() / size


def _jsonl_records(path: Path, *, fmt: str, columns: Columns, keep: list[str], chunk_size: int):
    reddit = fmt == "reddit"
    sources = _table_sources(columns)
    extra = _extra(keep)
    none_kept = [None] * len(extra)
    titles: dict[str, str] = {}  # Reddit: link_id -> submission title, from comments that carry it
    for number, line, progress in _lines(path, max_bytes=MAX_LINE_BYTES):
        if line is None:
            yield (number, {}, none_kept, f"line longer than {MAX_LINE_BYTES:,} bytes"), progress
            continue
        try:
            record = json.loads(line)
        except UnicodeDecodeError:
            yield (number, {}, none_kept, "bytes that are not UTF-8 (re-save the file as UTF-8)"), progress
            continue
        except ValueError as exc:
            yield (number, {}, none_kept, f"not valid JSON ({getattr(exc, 'msg', exc)})"), progress
            continue
        if reddit and isinstance(record, dict) and record.get("kind") == "t1" and isinstance(record.get("data"), dict):
            record = record["data"]  # the Reddit API's {"kind": "t1", "data": {...}} wrapping
        if not isinstance(record, dict):
            yield (number, {}, none_kept, f"expected a JSON object, found {type(record).__name__}"), progress
            continue
        fields, error = _reddit_fields(record, titles) if reddit else ({f: record.get(s) for f, s in sources.items()}, None)
        if not reddit and fields["text"] is None and sources["text"] not in record:
            error = f"no '{sources['text']}' field (pass --text-col NAME if the text is under another name)"
        kept = [record.get(name) for name in extra]
        yield (number, fields, kept, error), progress


def _strip_prefix(value: Any) -> str | None:
    """``t1_abc`` -> ``abc``: Reddit's type prefix on comment ids."""
    if value in (None, ""):
        return None
    value = str(value)
    return value[3:] if value[:3] in ("t1_", "t3_") else value


def _reddit_fields(record: dict, titles: dict[str, str]) -> tuple[dict[str, Any], str | None]:
    parent = record.get("parent_id")
    link = record.get("link_id")
    body = record.get("body")
    title = record.get("link_title") or record.get("title")
    if title and link:
        if len(titles) >= 100_000:  # bounded: memory stays flat on exports of many submissions
            titles.clear()
        titles[link] = title
    fields = {
        "id": _strip_prefix(record.get("id") or record.get("name")),
        # a comment whose parent is the submission itself (t3_) is a top-level comment
        "parent_id": _strip_prefix(parent) if isinstance(parent, str) and parent.startswith("t1_") else None,
        "author": record.get("author"),
        "created_at": _from_epoch(record.get("created_utc")),
        "text": body,
        "article_id": link,
        "target": title or titles.get(link),
    }
    error = None
    if body in ("[deleted]", "[removed]"):
        error = f"comment {body.strip('[]')} on Reddit (no text to score)"
    return fields, error


def _from_epoch(value: Any) -> str | None:
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromtimestamp(float(value), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return str(value)
    return moment.isoformat().replace("+00:00", "Z")


def _parquet_records(path: Path, *, fmt: str, columns: Columns, keep: list[str], chunk_size: int):
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"{path}: cannot read Parquet ({exc})", "check that the file is complete") from None
    sources = _table_sources(columns)
    header = list(source.schema_arrow.names)
    _check_header(path, header, sources, keep)
    present = {field: src for field, src in sources.items() if src in header}
    kept_src = _extra(keep)
    wanted = list(dict.fromkeys([*present.values(), *kept_src]))
    total = source.metadata.num_rows or 1
    row = 0
    try:
        for batch in source.iter_batches(batch_size=chunk_size, columns=wanted):
            values = {name: batch.column(name).to_pylist() for name in wanted}
            for i in range(batch.num_rows):
                row += 1
                fields = {field: values[src][i] for field, src in present.items()}
                yield (row, fields, [values[src][i] for src in kept_src], None), row / total
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: row {row + 1}: cannot read Parquet ({exc})", "check that the file is complete") from None


# -- XML exports --------------------------------------------------------------------------------------
def html_to_text(markup: str | None) -> str | None:
    """Comment HTML (as Disqus and WordPress store it) to plain text.

    >>> html_to_text("<p>Sign it.</p><p>Now &amp; here</p>")
    'Sign it.\\nNow & here'
    """
    if markup is None:
        return None
    text = _BREAK.sub("\n", markup)
    text = html.unescape(_TAG.sub("", text))
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    return "\n".join(line for line in lines if line)


class _XMLRecords:
    """Collects XML records while the parser runs, holding only the record being read.

    A record is an element named in ``records`` at depth ``depth`` (the root is depth 1), under a
    parent named ``parent`` when given. Its fields are the texts and attributes of its
    descendants by relative path: ``message``, ``author/name``, ``thread@id``. The direct children
    of the record's parent that come before it (a WordPress post's ``title``) are its
    ``context``. Each finished record goes to ``on_record(name, attributes, fields, context, line)``.
    """

    def __init__(self, records: set[str], depth: int, on_record: Callable, parent: str | None = None):
        self.records, self.depth, self.on_record, self.parent = records, depth, on_record, parent
        self.stack: list[str] = []
        self.text: list[str] = []
        self.fields: dict[str, str] | None = None
        self.attributes: dict[str, str] = {}
        self.context: dict[str, str] = {}
        self.line = 0
        self.line_of: Callable[[], int] = lambda: 0
        self._local: dict[str, str] = {}

    def local(self, name: str) -> str:
        found = self._local.get(name)
        if found is None:
            found = self._local[name] = name.rpartition("}")[2]
        return found

    # start/end run for every element of the export: they are kept small and branch early
    def start(self, name: str, attributes: dict[str, str]) -> None:
        stack = self.stack
        local = self._local.get(name) or self.local(name)
        stack.append(local)
        if self.fields is not None:
            if attributes:
                path = local if len(stack) == self.depth + 1 else "/".join(stack[self.depth:])
                for key, value in attributes.items():
                    self.fields.setdefault(f"{path}@{self.local(key)}", value)
        else:
            depth = len(stack)
            if depth == self.depth and local in self.records and (self.parent is None or stack[-2] == self.parent):
                self.fields = {}
                self.attributes = {self.local(k): v for k, v in attributes.items()}
                self.line = self.line_of()
            elif depth == self.depth - 1:
                self.context = {}  # a new parent: its children so far are the context of its records
        self.text = []

    def data(self, text: str) -> None:
        self.text.append(text)

    def end(self, name: str) -> None:
        stack = self.stack
        fields = self.fields
        depth = len(stack)
        if fields is not None:
            if depth == self.depth:
                self.on_record(stack[-1], self.attributes, fields, self.context, self.line)
                self.fields = None
            else:
                path = stack[-1] if depth == self.depth + 1 else "/".join(stack[self.depth:])
                if path not in fields:
                    text = self.text
                    fields[path] = text[0] if len(text) == 1 else "".join(text)
        elif depth == self.depth:  # a sibling of the records: part of their context
            self.context.setdefault(stack[-1], "".join(self.text))
        stack.pop()
        self.text = []


class _NoTree:
    """Parser target that builds nothing (the handlers are replaced by :class:`_XMLRecords`)."""

    def start(self, tag, attrib):  # pragma: no cover - never called
        pass

    def end(self, tag):  # pragma: no cover - never called
        pass

    def data(self, data):  # pragma: no cover - never called
        pass

    def close(self):
        return None


def _parse_xml(path: Path, collector: _XMLRecords, pending: list) -> Iterator[float]:
    """Feed ``path`` block by block to defusedxml's parser, with ``collector`` handling elements
    straight from expat (no tree is built); yields progress after each block so that the caller
    can drain ``pending``. defusedxml's handlers stay in place, so entity declarations
    (entity-expansion bombs, external entities) and external references are refused."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import DefusedXMLParser

    parser = DefusedXMLParser(target=_NoTree(), forbid_dtd=False, forbid_entities=True, forbid_external=True)
    expat = parser.parser
    expat.ordered_attributes = False
    expat.StartElementHandler = collector.start
    expat.EndElementHandler = collector.end
    expat.CharacterDataHandler = collector.data
    collector.line_of = lambda: expat.CurrentLineNumber
    size = path.stat().st_size or 1
    done = 0
    with open(path, "rb") as handle:
        try:
            while True:
                block = handle.read(256 * 1024)
                if not block:
                    parser.close()
                    break
                parser.feed(block)
                done += len(block)
                yield done / size
        except DefusedXmlException as exc:
            what = type(exc).__name__
            reason = {
                "EntitiesForbidden": "declares XML entities (an entity-expansion or external-entity payload)",
                "ExternalReferenceForbidden": "refers to an external resource (an external-entity payload)",
                "DTDForbidden": "has a document type declaration",
            }.get(what, what)
            raise DataError(f"{path}: line {expat.CurrentLineNumber}: refused: the file {reason}",
                            "platform exports never need this; get a fresh export") from None
        except ParseError as exc:
            line, column = getattr(exc, "position", (expat.CurrentLineNumber, 0))
            message = str(exc).split(":")[0]
            raise DataError(f"{path}: line {line}, column {column}: malformed XML ({message})",
                            "the export is damaged or cut short; export it again") from None
    yield 1.0


def _kept_canonical(path: Path, keep: list[str], fmt: str) -> None:
    other = [name for name in keep if name not in CANONICAL]
    if other:
        raise DataError(f"{path}: --keep '{other[0]}' is not a field of a {fmt} export",
                        f"keep one of: {', '.join(CANONICAL)}")


def _disqus_records(path: Path, *, fmt: str, columns: Columns, keep: list[str], chunk_size: int):
    """Disqus export: ``<thread>`` elements (id, link, title) and then ``<post>`` elements that
    refer to their thread and parent by ``dsq:id``."""
    _kept_canonical(path, keep, "Disqus")
    threads: dict[str, str | None] = {}
    pending: list = []

    def on_record(name: str, attributes: dict, fields: dict, context: dict, line: int) -> None:
        if name == "thread":
            threads[attributes.get("id", "")] = fields.get("title") or None
            return
        thread = fields.get("thread@id")
        record = {
            "id": attributes.get("id") or fields.get("id") or None,
            "parent_id": fields.get("parent@id") or None,
            "author": fields.get("author/name") or fields.get("author/username") or None,
            "created_at": fields.get("createdAt") or None,
            "text": html_to_text(fields.get("message")),
            "article_id": thread,
            "target": threads.get(thread or ""),
        }
        deleted = (fields.get("isDeleted") or "").strip() == "true" and not record["text"]
        pending.append((line, record, [], "comment deleted on Disqus (no text to score)" if deleted else None))

    collector = _XMLRecords({"thread", "post"}, depth=2, on_record=on_record)
    yield from _drain(_parse_xml(path, collector, pending), pending)


def _wordpress_records(path: Path, *, fmt: str, columns: Columns, keep: list[str], chunk_size: int):
    """WordPress WXR export: ``<item>`` per post with ``<wp:comment>`` children."""
    _kept_canonical(path, keep, "WordPress")
    pending: list = []

    def on_record(name: str, attributes: dict, fields: dict, context: dict, line: int) -> None:
        parent = (fields.get("comment_parent") or "0").strip()
        gmt = (fields.get("comment_date_gmt") or "").strip()
        local = (fields.get("comment_date") or "").strip()
        if gmt and not gmt.startswith("0000"):
            moment = gmt.replace(" ", "T") + "Z"
        else:  # no UTC time recorded: the site's local time, without a zone
            moment = local.replace(" ", "T") or None
        record = {
            "id": (fields.get("comment_id") or "").strip() or None,
            "parent_id": None if parent in ("", "0") else parent,
            "author": fields.get("comment_author") or None,
            "created_at": moment,
            "text": html_to_text(fields.get("comment_content")),
            "article_id": (context.get("post_id") or "").strip() or context.get("link") or None,
            "target": context.get("title") or None,
        }
        pending.append((line, record, [], None))

    collector = _XMLRecords({"comment"}, depth=4, on_record=on_record, parent="item")
    yield from _drain(_parse_xml(path, collector, pending), pending)


def _drain(progress_steps: Iterator[float], pending: list):
    for progress in progress_steps:
        for record in pending:
            yield record, progress
        pending.clear()


# -- plain-text article page ---------------------------------------------------------------------------
def _article_records(path: Path, *, fmt: str, columns: Columns, keep: list[str], chunk_size: int):
    """An article page saved as text: the title on the first line, the article, a line such as
    ``5 Comments``, then each comment as an author line followed by its text. Comments separated
    by blank lines may span several lines (the first line of each block is the author)."""
    _kept_canonical(path, keep, "article page")
    if path.stat().st_size > MAX_ARTICLE_BYTES:
        raise DataError(f"{path}: {path.stat().st_size} bytes is too large for an article page",
                        "an article page is read whole; split it or use another format")
    raw = path.read_bytes()
    try:
        lines = raw.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line}: bytes that are not UTF-8", "re-save the file as UTF-8") from None
    header = next((i for i in range(len(lines) - 1, -1, -1) if _COMMENTS_HEADER.match(lines[i])), None)
    if header is None:
        raise DataError(f"{path}: no line such as '5 Comments' that starts the comments",
                        "an article page needs its 'N Comments' line; or pass another --format")
    title = next((line.strip() for line in lines[:header] if line.strip()), None)
    body = [(i + 1, line.rstrip()) for i, line in enumerate(lines[header + 1:], start=header + 1)]
    blocks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    for number, text in body:
        if text.strip():
            current.append((number, text.strip()))
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    # Blank-line separated blocks (an author line, then text lines), or lines alternating author /
    # comment as on the page the seed was saved from. The count in the header decides when both fit.
    declared = int(re.sub(r"[,.]", "", _COMMENTS_HEADER.match(lines[header]).group(1)))
    filled = [line for block in blocks for line in block]
    as_blocks = len(blocks) >= 2 and all(len(block) >= 2 for block in blocks)
    if as_blocks and len(blocks) != declared and len(filled) == 2 * declared:
        as_blocks = False
    if not as_blocks:
        if len(filled) % 2:
            raise DataError(f"{path}: line {header + 1}: {len(filled)} lines after '{lines[header].strip()}'; "
                            "expected an author line and a comment line for each comment",
                            "separate comments with blank lines when a comment spans several lines")
        blocks = [filled[i:i + 2] for i in range(0, len(filled), 2)]
    for position, block in enumerate(blocks, start=1):
        author = block[0][1]
        text = "\n".join(t for _, t in block[1:])
        line = block[1][0] if len(block) > 1 else block[0][0]
        fields = {"id": f"{path.stem}-{position}", "author": author, "text": text,
                  "article_id": path.stem, "target": title}
        yield (line, fields, [], None), position / len(blocks)
