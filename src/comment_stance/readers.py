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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .data import Columns
from .errors import DataError
from .formats import COMMENTS_HEADER as _COMMENTS_HEADER
from .formats import INPUT_FORMATS, detect_format

__all__ = ["CANONICAL", "INPUT_FORMATS", "CommentChunk", "detect_format", "html_to_text", "read_chunks"]

#: the fields of a canonical comment record, in output order
CANONICAL = ("id", "parent_id", "author", "created_at", "text", "article_id", "target")
#: default longest field, in characters; longer fields make their row an error row
MAX_CHARS = 100_000
#: an article page is read whole, so it has a size limit
MAX_ARTICLE_BYTES = 50 * 1024 * 1024
#: a JSON line longer than this becomes an error row without being held in memory (with the
#: default --max-chars the bound is lower: see :func:`_line_budget`)
MAX_LINE_BYTES = 64 * 1024 * 1024
#: a CSV record spanning more physical lines than this gets a warning (an unbalanced quote?)
MANY_LINES = 100
#: warnings per file given one by one; the rest are counted
MAX_WARNINGS = 20

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
    ``progress`` is the share of the file read so far (``None`` when unknown); ``warnings`` holds
    what looked wrong in the file while this chunk was read (e.g. a record spanning hundreds of
    lines: an unbalanced quote), one line each.
    """

    columns: dict[str, list]
    lines: list[int]
    errors: list[str | None]
    unit: str = "line"
    progress: float | None = None
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lines)

    def tail(self, start: int) -> "CommentChunk":
        """The records from position ``start`` on (used to skip rows already scored on --resume)."""
        return CommentChunk({k: v[start:] for k, v in self.columns.items()}, self.lines[start:],
                            self.errors[start:], self.unit, self.progress, list(self.warnings))

    def to_frame(self):
        """The records as a :class:`pandas.DataFrame`, with ``line`` and ``error`` columns."""
        import pandas as pd

        frame = pd.DataFrame(self.columns)
        frame[self.unit] = self.lines
        frame["error"] = self.errors
        return frame


class _Warnings:
    """What looked wrong in a file, for the summary: at most :data:`MAX_WARNINGS` lines, then a count."""

    def __init__(self) -> None:
        self.pending: list[str] = []
        self.given = 0
        self.more = 0

    def add(self, message: str) -> None:
        if self.given < MAX_WARNINGS:
            self.pending.append(message)
            self.given += 1
        else:
            self.more += 1

    def drain(self, last: bool = False) -> list[str]:
        out, self.pending = self.pending, []
        if last and self.more:
            out.append(f"... and {self.more:,} more such warnings")
            self.more = 0
        return out


# -- the one entry point --------------------------------------------------------------------------
def read_chunks(
    path: str | Path,
    *,
    format: str | None = None,
    columns: Columns | None = None,
    keep: Sequence[str] = (),
    chunk_size: int = 10_000,
    max_chars: int = MAX_CHARS,
    encoding: str | None = None,
    row_groups: Sequence[int] | None = None,
) -> Iterator[CommentChunk]:
    """Stream the comments of ``path`` as chunks of canonical records, in file order.

    ``format`` forces the input format (see :data:`INPUT_FORMATS`); ``columns`` names the
    source columns of table formats (CSV/TSV/JSONL/Parquet); ``keep`` names extra columns to
    carry along (a canonical field or, for tables and JSON lines, a source column). A field longer
    than ``max_chars`` is cut to that length while the file is read and makes its row an error
    row. ``encoding`` is the text encoding of CSV/TSV, JSON lines and article pages (default UTF-8,
    with or without a byte-order mark); XML declares its own, which ``encoding`` overrides.
    ``row_groups`` reads only those row groups of a Parquet file (a distributed engine's share of
    it), rows still numbered as in the whole file.

    >>> chunks = read_chunks("tests/fixtures/exports/comments.csv", chunk_size=2)
    >>> [len(c) for c in chunks]
    [2, 2, 1]
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file", "check the path")
    if chunk_size < 1:
        raise DataError(f"chunk size {chunk_size} is too small", "use a chunk size of at least 1")
    if max_chars < 1:
        raise DataError(f"max chars {max_chars} is too small", "use a limit of at least 1 character")
    encoding = _check_encoding(encoding)
    fmt = detect_format(path, format)
    columns = columns or Columns()
    keep = list(dict.fromkeys(keep))
    readers: dict[str, Callable[..., Iterator[list]]] = {
        "csv": _delimited_records, "tsv": _delimited_records, "jsonl": _jsonl_records,
        "reddit": _jsonl_records, "parquet": _parquet_records, "disqus": _disqus_records,
        "wordpress": _wordpress_records, "article": _article_records,
    }
    warnings = _Warnings()
    options = {}
    if row_groups is not None:
        if fmt != "parquet":
            raise DataError(f"{path}: row groups exist only in Parquet files, not {fmt}", "read the whole file")
        options["row_groups"] = list(row_groups)
    source = readers[fmt](path, fmt=fmt, columns=columns, keep=keep, chunk_size=chunk_size, max_chars=max_chars,
                          encoding=encoding, warnings=warnings, **options)
    unit = "row" if fmt == "parquet" else "line"
    batch = _Batch(_extra(keep), unit, max_chars, encoding)
    progress = None
    try:
        for record, progress in source:
            batch.add(*record)
            if len(batch) >= chunk_size:
                yield batch.emit(progress, warnings.drain())
    except DataError:
        if len(batch):  # the records read before the file broke are kept (and can be scored)
            yield batch.emit(progress, warnings.drain(last=True))
        raise
    last = warnings.drain(last=True)
    if len(batch) or last:
        yield batch.emit(1.0, last)


def _check_encoding(encoding: str | None) -> str | None:
    """``None`` for UTF-8 (the fast paths), else the codec's canonical name."""
    import codecs

    if encoding is None:
        return None
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise DataError(f"unknown encoding '{encoding}'", "use a Python codec name such as utf-8, cp1252 or latin-1") from None
    return None if name in ("utf-8", "utf-8-sig") else name


def _not_decodable(encoding: str | None) -> str:
    if encoding is None:
        return "bytes that are not UTF-8 (pass --encoding, e.g. --encoding cp1252, or re-save the file as UTF-8)"
    return f"bytes that are not {encoding} (check --encoding)"


def _extra(keep: Sequence[str]) -> list[str]:
    """Kept columns that are not canonical fields (those are in every chunk anyway)."""
    return [name for name in keep if name not in CANONICAL]


def _over(name: str, max_chars: int) -> str:
    """The error of a field cut while the file was read (its full length was never held)."""
    return f"{name} is over the limit of {max_chars} characters"


def _cut_long(fields: dict[str, Any], kept: list, extra: list[str], max_chars: int) -> str | None:
    """Cut the fields of one record to ``max_chars`` as it is read, so that a chunk never holds
    more; returns the problem (the first field over the limit) or ``None``. Readers call it only
    when the record's size says a field may be over the limit, which keeps the common case cheap."""
    problem = None
    for name, value in fields.items():
        if type(value) is str and len(value) > max_chars:
            problem = problem or f"{name} is {len(value)} characters, over the limit of {max_chars}"
            fields[name] = value[:max_chars]
    for j, value in enumerate(kept):
        if type(value) is str and len(value) > max_chars:
            problem = problem or f"{extra[j]} is {len(value)} characters, over the limit of {max_chars}"
            kept[j] = value[:max_chars]
    return problem


class _Batch:
    """Collects records and validates them, column by column, into a :class:`CommentChunk`."""

    def __init__(self, keep: list[str], unit: str, max_chars: int, encoding: str | None = None):
        self.keep = keep
        self.unit = unit
        self.max_chars = max_chars
        self.encoding = encoding
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

    def emit(self, progress: float | None, warnings: list[str] | None = None) -> CommentChunk:
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
        # readers of formats whose records can be large cut fields as they read (_cut_long);
        # this catches the rest (XML texts, held up to a few times the limit, converted values)
        limit = self.max_chars
        for name, values in columns.items():
            for i in [i for i, v in enumerate(values) if type(v) is str and len(v) > limit]:
                problems.setdefault(i, f"{name} is {len(values[i])} characters, over the limit of {limit}")
                values[i] = values[i][:limit]  # the output holds at most the limit
        errors = [None] * len(lines)
        for i, problem in problems.items():
            errors[i] = f"{self.unit} {lines[i]}: {problem}"
        chunk = CommentChunk(columns, lines, errors, self.unit, progress, list(warnings or []))
        self._reset()
        return chunk

    def _repair_encoding(self, problems: dict[int, str]) -> None:
        """Bytes that the encoding cannot decode arrive as lone surrogates (``surrogateescape``):
        such a row is an error row, and its fields are repaired (U+FFFD) so that every output
        format can hold them. One regex over the joined chunk keeps the common, clean case cheap."""
        joined = "\x00".join(x for col in self.columns.values() for x in col if type(x) is str)
        if not _SURROGATE.search(joined):
            return
        for values in self.columns.values():
            for i, value in enumerate(values):
                if type(value) is str and _SURROGATE.search(value):
                    values[i] = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                    problems.setdefault(i, _not_decodable(self.encoding))


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


class _PhysicalLines:
    """Feeds the csv module one physical line at a time and watches the record being read.

    It counts the lines and quote characters of the current record (under RFC 4180 quoting a
    line ends inside a quoted field exactly when the record's quote count so far is odd), and
    bounds what the record may hold: once a record has passed ``budget`` characters, the rest of
    it is read in pieces and handed on as only its line endings and the parity of its quotes, so
    the parser ends the record where it would have and holds no more. Such a record is ``cut``.
    """

    PIECE = 1 << 16

    def __init__(self, text, budget: int, delimiter: str):
        self.text = text
        self.budget = budget
        # flips the parser between inside and outside quotes from any state: in an unquoted field
        # the delimiter ends it and the quote opens the next; in a quoted field it is closed
        self.flip = delimiter + '"'
        self.number = 0  # physical lines handed out so far
        self.new_record()

    def new_record(self) -> None:
        self.start = self.number + 1
        self.chars = 0
        self.quotes = 0
        self.cut = False

    def __iter__(self):
        return self

    def __next__(self) -> str:
        room = self.budget - self.chars
        line = self.text.readline(max(room, 0) + 1)
        if not line:
            raise StopIteration
        self.number += 1
        if len(line) <= room:  # the whole line (it ends, or the file does) within the budget
            self.chars += len(line)
            self.quotes += line.count('"')
            return line
        # over the budget: keep what fits, read the rest of the physical line in pieces
        kept, rest = line[: max(room, 0)], line[max(room, 0):]
        dropped = rest.count('"')
        while not rest.endswith(("\n", "\r")):
            rest = self.text.readline(self.PIECE)
            if not rest:
                break
            dropped += rest.count('"')
        ending = "\r\n" if rest.endswith("\r\n") else rest[-1:] if rest.endswith(("\n", "\r")) else ""
        if ending and dropped % 2 == 0 and not kept and self.quotes % 2:
            ending = ""  # still inside a quoted field: an empty string adds nothing to it
        self.quotes += kept.count('"') + dropped
        self.chars = self.budget + 1
        self.cut = True
        return kept + (self.flip if dropped % 2 else "") + ending

    def skip_record(self) -> None:
        """After a parse error: read past the rest of the record (to the line where its quotes balance)."""
        while self.quotes % 2:
            line = self.text.readline(self.PIECE)
            if not line:
                return
            if line.endswith(("\n", "\r")):
                self.number += 1
            self.quotes += line.count('"')


def _delimited_records(path: Path, *, fmt: str, columns: Columns, keep: list[str], chunk_size: int,
                       max_chars: int, encoding: str | None, warnings: _Warnings):
    sources = _table_sources(columns)
    delimiter = "," if fmt == "csv" else "\t"
    total = path.stat().st_size or 1
    with open(path, "rb") as binary:
        text = _text_stream(binary, encoding)
        lines = _PhysicalLines(text, budget=(1 << 20) + 2 * max_chars, delimiter=delimiter)
        reader = csv.reader(lines, delimiter=delimiter)
        try:
            with _field_size_limit(lines.budget + 8):
                header = next(reader)
        except StopIteration:
            raise DataError(f"{path}: the file is empty", "a CSV/TSV file needs a header row naming its columns") from None
        except csv.Error as exc:
            raise DataError(f"{path}: line 1: cannot read the header ({exc})", "check the file's quoting") from None
        if lines.cut:
            raise DataError(f"{path}: line 1: the header is over {lines.budget:,} characters",
                            "check that the file is a CSV/TSV file with a header row")
        header = [h.strip() for h in header]
        _check_header(path, header, sources, keep)
        index = {name: i for i, name in enumerate(header)}
        width = len(header)
        canonical = [(name, index[src]) for name, src in sources.items() if src in index]
        named = {i: name for name, i in canonical}
        extra = _extra(keep)
        kept_at = [index[name] for name in extra]
        named.update({i: name for name, i in zip(extra, kept_at)})
        # a record over this many characters must have a field over max_chars (quotes doubled)
        lines.budget = width * (2 * max_chars + 3) + 2
        lines.new_record()
        limit = _field_size_limit(lines.budget + 8)
        while True:
            try:
                with limit:
                    row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:  # the parser gave up on this record: one error row, then the next
                start = lines.start
                lines.skip_record()
                lines.new_record()
                yield (start, {}, [None] * len(extra), f"cannot parse ({exc})"), binary.tell() / total
                continue
            start, spans, cut, size = lines.start, lines.number - lines.start + 1, lines.cut, lines.chars
            lines.new_record()
            if not row:  # a blank line is no record
                continue
            if spans > MANY_LINES:
                warnings.add(f"{path}: line {start}: one record spans {spans:,} lines (an unbalanced quote?)")
            error = None
            if cut:
                long = [i for i, value in enumerate(row) if len(value) > max_chars]
                where = named.get(long[0], header[long[0]] if long[0] < width else f"field {long[0] + 1}") if long else None
                error = _over(where, max_chars) if where else f"the record is over {lines.budget:,} characters"
            elif len(row) != width:
                error = f"{len(row)} fields where the header has {width} (check quoting and delimiters)"
            if error is not None and len(row) != width:
                fields = {"id": row[index[sources["id"]]]} if sources["id"] in index and len(row) > index[sources["id"]] else {}
                yield (start, fields, [None] * len(extra), error), binary.tell() / total
                continue
            fields = {name: (row[i] or None) if name != "text" else row[i] for name, i in canonical}
            kept = [row[i] for i in kept_at]
            if size > max_chars:  # a field may be over the limit
                problem = _cut_long(fields, kept, extra, max_chars)
                error = error or problem
            yield (start, fields, kept, error), binary.tell() / total


class _field_size_limit:
    """The csv module's field size limit is process-wide: set it around each read and put the
    caller's back, so that reading a file changes nothing for other code in the process."""

    def __init__(self, limit: int):
        self.limit = limit

    def __enter__(self):
        self.previous = csv.field_size_limit(self.limit)

    def __exit__(self, *exc):
        csv.field_size_limit(self.previous)


def _text_stream(binary, encoding: str | None = None):
    import io

    # surrogateescape: a row with bytes the encoding cannot decode becomes an error row, not a crash
    return io.TextIOWrapper(binary, encoding=encoding or "utf-8-sig", errors="surrogateescape", newline="")


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


def _line_budget(max_chars: int) -> int:
    """Longest JSON line read: room for a few fields of ``max_chars`` characters each, even when
    every character is written as a ``\\uXXXX`` escape pair (12 bytes), plus 1 MiB of metadata."""
    return min(MAX_LINE_BYTES, 12 * max_chars + (1 << 20))


def _jsonl_records(path: Path, *, fmt: str, columns: Columns, keep: list[str], chunk_size: int,
                   max_chars: int, encoding: str | None, warnings: _Warnings):
    reddit = fmt == "reddit"
    sources = _table_sources(columns)
    extra = _extra(keep)
    none_kept = [None] * len(extra)
    if encoding is not None and "\n{}\"".encode(encoding, "replace") != b'\n{}"':
        raise DataError(f"{path}: JSON lines cannot be read as {encoding}",
                        "convert the file to UTF-8 (e.g. iconv -f ENCODING -t UTF-8)")
    titles: dict[str, str] = {}  # Reddit: link_id -> submission title, from comments that carry it
    budget = _line_budget(max_chars)
    for number, line, progress in _lines(path, max_bytes=budget):
        if line is None:
            yield (number, {}, none_kept, f"line longer than {budget:,} bytes"), progress
            continue
        try:
            record = json.loads(line if encoding is None else line.decode(encoding, "surrogateescape"))
        except UnicodeDecodeError:
            yield (number, {}, none_kept, _not_decodable(encoding)), progress
            continue
        except ValueError as exc:
            yield (number, {}, none_kept, f"not valid JSON ({getattr(exc, 'msg', exc)})"), progress
            continue
        except RecursionError:  # e.g. [[[[... a hundred thousand deep: one bad line, not a dead job
            yield (number, {}, none_kept, "nested too deeply to read"), progress
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
        if len(line) > max_chars:  # a field may be over the limit
            problem = _cut_long(fields, kept, extra, max_chars)
            error = error or problem
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


def _parquet_records(path: Path, *, fmt: str, columns: Columns, keep: list[str], chunk_size: int,
                     max_chars: int, encoding: str | None, warnings: _Warnings,
                     row_groups: list[int] | None = None):
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"{path}: cannot read Parquet ({exc})", "check that the file is complete") from None
    sources = _table_sources(columns)
    header = list(source.schema_arrow.names)
    _check_header(path, header, sources, keep)
    present = {name: src for name, src in sources.items() if src in header}
    kept_src = _extra(keep)
    wanted = list(dict.fromkeys([*present.values(), *kept_src]))
    # the name an over-long value is reported under: its canonical field, else the kept column
    shown = {**{src: name for name, src in present.items()}, **{name: name for name in kept_src}}
    meta = source.metadata
    row = 0
    if row_groups is None:
        total = meta.num_rows or 1
    else:  # rows keep their numbers in the whole file
        row = sum(meta.row_group(g).num_rows for g in range(min(row_groups, default=0)))
        total = row + sum(meta.row_group(g).num_rows for g in row_groups) or 1
    try:
        # only the columns needed, in batches of at most the chunk size; text columns are cut to
        # max_chars in Arrow before they become Python strings
        for batch in source.iter_batches(batch_size=min(chunk_size, 4096), columns=wanted, row_groups=row_groups):
            values, over = {}, {}
            for name in wanted:
                column = batch.column(name)
                if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                    lengths = pc.utf8_length(column)
                    if (pc.max(lengths).as_py() or 0) > max_chars:
                        for i in pc.indices_nonzero(pc.greater(lengths, max_chars)).to_pylist():
                            over.setdefault(i, f"{shown[name]} is {lengths[i].as_py()} characters, "
                                               f"over the limit of {max_chars}")
                        column = pc.utf8_slice_codeunits(column, 0, max_chars)
                values[name] = column.to_pylist()
            for i in range(batch.num_rows):
                row += 1
                fields = {name: values[src][i] for name, src in present.items()}
                yield (row, fields, [values[src][i] for src in kept_src], over.get(i)), row / total
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

    The text of one element is held up to ``cap`` characters; the rest is dropped as it arrives,
    and the record's fields name the first element cut that way under :data:`_CUT`.
    """

    def __init__(self, records: set[str], depth: int, on_record: Callable, parent: str | None = None,
                 cap: int = 4 * MAX_CHARS):
        self.records, self.depth, self.on_record, self.parent = records, depth, on_record, parent
        self.cap = cap
        self.stack: list[str] = []
        self.text: list[str] = []
        self.size = 0  # characters of the current element's text held
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
        self.size = 0

    def data(self, text: str) -> None:
        size = self.size + len(text)
        if size > self.cap:
            if self.size <= self.cap:  # first time over: keep what fits, remember the cut
                self.text.append(text[: self.cap - self.size + 1])
            self.size = size
            return
        self.size = size
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
                    if self.size > self.cap:
                        fields.setdefault(_CUT, path)
        elif depth == self.depth:  # a sibling of the records: part of their context
            self.context.setdefault(stack[-1], "".join(self.text))
        stack.pop()
        self.text = []
        self.size = 0


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


def _parse_xml(path: Path, collector: _XMLRecords, pending: list, encoding: str | None = None) -> Iterator[float]:
    """Feed ``path`` block by block to defusedxml's parser, with ``collector`` handling elements
    straight from expat (no tree is built); yields progress after each block so that the caller
    can drain ``pending``. defusedxml's handlers stay in place, so entity declarations
    (entity-expansion bombs, external entities) and external references are refused."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import DefusedXMLParser

    parser = DefusedXMLParser(target=_NoTree(), encoding=encoding, forbid_dtd=False, forbid_entities=True,
                              forbid_external=True)
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


def _disqus_records(path: Path, *, fmt: str, columns: Columns, keep: list[str], chunk_size: int,
                    max_chars: int, encoding: str | None, warnings: _Warnings):
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
        error = "comment deleted on Disqus (no text to score)" if deleted else _cut_error(fields, max_chars)
        pending.append((line, record, [], error))

    collector = _XMLRecords({"thread", "post"}, depth=2, on_record=on_record, cap=_xml_cap(max_chars))
    yield from _drain(_parse_xml(path, collector, pending, encoding), pending)


def _wordpress_records(path: Path, *, fmt: str, columns: Columns, keep: list[str], chunk_size: int,
                       max_chars: int, encoding: str | None, warnings: _Warnings):
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
        pending.append((line, record, [], _cut_error(fields, max_chars)))

    collector = _XMLRecords({"comment"}, depth=4, on_record=on_record, parent="item", cap=_xml_cap(max_chars))
    yield from _drain(_parse_xml(path, collector, pending, encoding), pending)


#: key, in an XML record's fields, of the first element whose text was cut at the cap
_CUT = "\x00cut"
#: XML elements whose text is the comment (others are reported under their own name)
_TEXT_ELEMENTS = {"message": "text", "comment_content": "text", "author/name": "author",
                  "comment_author": "author"}


def _xml_cap(max_chars: int) -> int:
    """Characters of one element's text held while parsing: the limit, and room for the markup
    that comes off when comment HTML becomes text."""
    return 4 * max_chars


def _cut_error(fields: dict, max_chars: int) -> str | None:
    cut = fields.get(_CUT)
    return None if cut is None else _over(_TEXT_ELEMENTS.get(cut, cut), max_chars)


def _drain(progress_steps: Iterator[float], pending: list):
    try:
        for progress in progress_steps:
            for record in pending:
                yield record, progress
            pending.clear()
    except DataError:
        for record in pending:  # records complete before the file broke are still records
            yield record, None
        pending.clear()
        raise


# -- plain-text article page ---------------------------------------------------------------------------
def _article_records(path: Path, *, fmt: str, columns: Columns, keep: list[str], chunk_size: int,
                     max_chars: int, encoding: str | None, warnings: _Warnings):
    """An article page saved as text: the title on the first line, the article, a line such as
    ``5 Comments``, then each comment as an author line followed by its text. Comments separated
    by blank lines may span several lines (the first line of each block is the author)."""
    _kept_canonical(path, keep, "article page")
    if path.stat().st_size > MAX_ARTICLE_BYTES:
        raise DataError(f"{path}: {path.stat().st_size} bytes is too large for an article page",
                        "an article page is read whole; split it or use another format")
    raw = path.read_bytes()
    try:
        lines = raw.decode(encoding or "utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line}: bytes that are not {encoding or 'UTF-8'}",
                        "pass --encoding (e.g. --encoding cp1252) or re-save the file as UTF-8") from None
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
