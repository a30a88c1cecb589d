"""Property-based tests of every reader and writer (hypothesis).

Arbitrary rows (quotes, delimiters, newlines, NULs, formula prefixes, bytes that are not UTF-8,
empty, whitespace-only and over-long fields) are written with an independent writer (the csv
module, json, pyarrow, hand-made XML), scored with a fitted majority model, and the output is read
back with an independent parser (csv module, json, pyarrow): rows in = rows out, same ids in the
same order, an error exactly on the rows that must have one, kept text as it was (or cut, or
neutralized, as documented). Deterministic: ``derandomize=True``; run with
``--hypothesis-show-statistics`` to see how many cases each property tried.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from comment_stance.models.baselines import MajorityModel  # noqa: E402
from comment_stance.readers import read_chunks  # noqa: E402
from comment_stance.scoring import score_file  # noqa: E402

MAX_CHARS = 40
BAD = "\ue000"  # stands for a byte that is not UTF-8 (b"\xff") in the file
LABELS = ["conditional", "skeptical", "supportive"]
SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

MODEL = MajorityModel().fit(["a", "b", "c", "d"], ["supportive", "skeptical", "supportive", "conditional"])

# characters that break naive readers and writers, mixed with ordinary text
_TRICKY = st.sampled_from(['"', "'", ",", "\t", "\n", "\r", "\r\n", "\x00", "=", "+", "-", "@", "\\", "{", "}",
                           "\u2028", "\ufeff", "\uff1d", " ", "\u00e9", "\U0001f600", BAD])
_PLAIN = st.text(st.characters(exclude_categories=("Cs",), exclude_characters=BAD), max_size=12)
_FIELD = st.one_of(
    st.lists(st.one_of(_TRICKY, _PLAIN), max_size=8).map("".join),
    st.sampled_from(["", " ", "\n", "   \t"]),
    st.integers(MAX_CHARS - 2, 3 * MAX_CHARS).map(lambda n: "w" * n),  # around the limit
    st.integers(1, 4).map(lambda k: "=1+1," * (k * 1500)),  # huge: far over the limit
)


@st.composite
def _rows(draw, field=_FIELD, allow_bad=True):
    n = draw(st.integers(0, 12))
    rows = []
    for i in range(n):
        text, author = draw(field), draw(field)
        if not allow_bad:
            text, author = text.replace(BAD, "?"), author.replace(BAD, "?")
        rows.append({"id": f"r{i}", "text": text, "author": author})
    return rows


def _usable(text: str) -> bool:
    return bool(text) and not text.isspace()


def _expected_error(row: dict) -> bool:
    return (BAD in row["text"] or BAD in row["author"] or not _usable(row["text"])
            or len(row["text"]) > MAX_CHARS or len(row["author"]) > MAX_CHARS)


def _neutralized(value: str) -> str:
    """The documented CSV rule, written again here: a formula start gets a leading quote, plain numbers stay."""
    import re

    if value and value[0] in "=+-@\t\r\uff1d\uff0b\uff0d\uff20" and not re.fullmatch(
            r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", value):
        return "'" + value
    return value


def _to_bytes(text: str) -> bytes:
    return text.encode("utf-8").replace(BAD.encode("utf-8"), b"\xff")


def _write_input(rows: list[dict], folder: Path, fmt: str) -> Path:
    if fmt in ("csv", "tsv"):
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, delimiter="," if fmt == "csv" else "\t", lineterminator="\r\n")
        writer.writerow(["id", "text", "author"])
        writer.writerows([[r["id"], r["text"], r["author"]] for r in rows])
        path = folder / f"in.{fmt}"
        path.write_bytes(_to_bytes(buffer.getvalue()))
    elif fmt == "jsonl":
        path = folder / "in.jsonl"
        path.write_bytes(b"".join(_to_bytes(json.dumps(r, ensure_ascii=False)) + b"\n" for r in rows))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = folder / "in.parquet"
        pq.write_table(pa.table({k: pa.array([r[k] for r in rows], pa.string()) for k in ("id", "text", "author")}),
                       path, row_group_size=5)
    return path


def _read_output(path: Path) -> list[dict]:
    """The scored rows, read with parsers that are not ours."""
    if path.suffix in (".csv", ".tsv"):
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle, delimiter="," if path.suffix == ".csv" else "\t"))
    if path.suffix == ".jsonl":
        text = path.read_text(encoding="utf-8")
        assert text == "" or text.endswith("\n")
        return [json.loads(line) for line in text.split("\n")[:-1]]
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def _check(rows: list[dict], out: Path, fmt: str, kept_text: bool = True) -> None:
    got = _read_output(out)
    assert len(got) == len(rows)
    # a JSON line with a byte that is not UTF-8 cannot be parsed at all: its id is its line number
    expected_ids = [str(i + 1) if fmt == "jsonl" and (BAD in r["text"] or BAD in r["author"]) else r["id"]
                    for i, r in enumerate(rows)]
    assert [str(g["id"]) for g in got] == expected_ids
    for row, out_row in zip(rows, got):
        bad = _expected_error(row)
        assert bool(out_row["error"]) == bad, (row, out_row)
        if bad:
            assert out_row["label"] in ("", None)
            continue
        assert out_row["label"] in LABELS and 0 <= float(out_row["confidence"]) <= 1
        if kept_text:
            shown = out_row["text"]
            assert shown == (_neutralized(row["text"]) if out.suffix in (".csv", ".tsv") else row["text"])


_OUT = st.sampled_from([".csv", ".tsv", ".jsonl", ".parquet"])


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
@settings(max_examples=70, **SETTINGS)
@given(rows=_rows(), suffix=_OUT, chunk_size=st.integers(1, 5))
def test_tables_every_row_once_in_order(fmt, rows, suffix, chunk_size):
    if fmt == "parquet":
        rows = [{k: v.replace(BAD, "?") for k, v in r.items()} for r in rows]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        source = _write_input(rows, folder, fmt)
        out = folder / f"out{suffix}"
        summary = score_file(MODEL, source, out, keep=["text"], chunk_size=chunk_size, max_chars=MAX_CHARS)
        assert summary.rows == len(rows) and summary.errors == sum(map(_expected_error, rows))
        _check(rows, out, fmt)
        assert sorted(p.name for p in folder.iterdir()) == sorted([source.name, out.name])


@settings(max_examples=100, **SETTINGS)
@given(rows=_rows(), chunk_size=st.integers(1, 4))
def test_csv_reader_alone_keeps_fields_and_lines(rows, chunk_size):
    """read_chunks: ids, order, the line each record starts on (counted here from what was written)."""
    with tempfile.TemporaryDirectory() as folder:
        source = _write_input(rows, Path(folder), "csv")
        chunks = list(read_chunks(source, chunk_size=chunk_size, max_chars=MAX_CHARS))
    assert all(0 < len(c) <= chunk_size for c in chunks)
    ids = [i for c in chunks for i in c.columns["id"]]
    lines = [n for c in chunks for n in c.lines]
    assert ids == [r["id"] for r in rows]
    starts, line = [], 2
    for r in rows:  # csv.writer ends records with \r\n; \r and \n inside fields end physical lines too
        starts.append(line)
        body = r["text"] + r["author"]
        line += 1 + body.count("\n") + body.count("\r") - body.count("\r\n")
    assert lines == starts


def _disqus(rows: list[dict]) -> str:
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<disqus xmlns="http://disqus.com" '
             'xmlns:dsq="http://disqus.com/disqus-internals">\n  <thread dsq:id="t1"><title>Pact</title></thread>\n']
    for r in rows:
        parts.append(f'  <post dsq:id={quoteattr(r["id"])}>\n    <message>{escape(r["text"])}</message>\n'
                     f'    <author><name>{escape(r["author"])}</name></author>\n    <thread dsq:id="t1"/>\n  </post>\n')
    return "".join(parts) + "</disqus>\n"


def _wordpress(rows: list[dict]) -> str:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" xmlns:wp="http://wordpress.org/export/1.2/">\n'
             "<channel>\n<item>\n<title>Pact</title>\n<wp:post_id>7</wp:post_id>\n"]
    for i, r in enumerate(rows):
        parts.append(f"<wp:comment><wp:comment_id>{i + 1}</wp:comment_id>"
                     f"<wp:comment_author>{escape(r['author'])}</wp:comment_author>"
                     f"<wp:comment_content>{escape(r['text'])}</wp:comment_content>"
                     "<wp:comment_parent>0</wp:comment_parent></wp:comment>\n")
    return "".join(parts) + "</item>\n</channel>\n</rss>\n"


# XML 1.0 allows no NUL or most control characters, and markup in a message is HTML: words only
_WORDS = st.one_of(st.lists(st.text("abcdefgh\u00e9\U0001f600=+-@\"',", min_size=1, max_size=8), max_size=6).map(" ".join),
                   st.integers(MAX_CHARS - 2, 5 * MAX_CHARS).map(lambda n: "w" * n))


@pytest.mark.parametrize("kind", ["disqus", "wordpress"])
@settings(max_examples=50, **SETTINGS)
@given(rows=_rows(field=_WORDS, allow_bad=False), suffix=_OUT)
def test_xml_exports_every_row_once_in_order(kind, rows, suffix):
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        source = folder / "export.xml"
        source.write_text(_disqus(rows) if kind == "disqus" else _wordpress(rows), encoding="utf-8")
        out = folder / f"out{suffix}"
        score_file(MODEL, source, out, chunk_size=3, max_chars=MAX_CHARS)
        got = _read_output(out)
    ids = [r["id"] for r in rows] if kind == "disqus" else [str(i + 1) for i in range(len(rows))]
    assert [str(g["id"]) for g in got] == ids
    assert [bool(g["error"]) for g in got] == [_expected_error(r) for r in rows]


@settings(max_examples=60, **SETTINGS)
@given(rows=_rows(), suffix=_OUT, wrapped=st.booleans())
def test_reddit_every_row_once_in_order(rows, suffix, wrapped):
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        source = folder / "comments.ndjson"
        lines = []
        for r in rows:
            record = {"id": r["id"], "body": r["text"], "author": r["author"], "link_id": "t3_x",
                      "parent_id": "t3_x", "created_utc": 1761123600}
            if wrapped:
                record = {"kind": "t1", "data": record}
            lines.append(_to_bytes(json.dumps(record, ensure_ascii=False)) + b"\n")
        # the first line tells Reddit from plain JSON lines: make it a clean one
        source.write_bytes(_to_bytes(json.dumps({"id": "first", "body": "Sign it.", "link_id": "t3_x",
                                                 "parent_id": "t3_x"})) + b"\n" + b"".join(lines))
        out = folder / f"out{suffix}"
        score_file(MODEL, source, out, format="reddit", chunk_size=4, max_chars=MAX_CHARS)
        got = _read_output(out)[1:]
    assert [str(g["id"]) for g in got] == [str(i + 2) if BAD in r["text"] + r["author"] else r["id"]
                                           for i, r in enumerate(rows)]
    expected = [_expected_error(r) or r["text"] in ("[deleted]", "[removed]") for r in rows]
    assert [bool(g["error"]) for g in got] == expected


_UNICODE_BREAKS = st.sampled_from(["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"])


@settings(max_examples=60, **SETTINGS)
@given(rows=_rows(field=st.one_of(_FIELD, st.lists(st.one_of(_UNICODE_BREAKS, _PLAIN), max_size=6).map("".join)),
                  allow_bad=False),
       out_format=st.sampled_from(["csv", "tsv", "jsonl", "json"]), chunk_size=st.integers(1, 5))
def test_stream_output_every_row_once_in_order(rows, out_format, chunk_size):
    """Rows to an open stream (stdout for `stance predict FILE`), read back with csv/json."""
    with tempfile.TemporaryDirectory() as folder:
        source = _write_input(rows, Path(folder), "jsonl")
        buffer = io.StringIO(newline="")
        score_file(MODEL, source, buffer, out_format=out_format, keep=["text"], chunk_size=chunk_size,
                   max_chars=MAX_CHARS)
    text = buffer.getvalue()
    if out_format == "json":
        got = json.loads(text)
    elif out_format == "jsonl":
        got = [json.loads(line) for line in text.split("\n")[:-1]]
    else:
        got = list(csv.DictReader(io.StringIO(text, newline=""), delimiter="," if out_format == "csv" else "\t"))
    assert [str(g["id"]) for g in got] == [r["id"] for r in rows]
    assert [bool(g["error"]) for g in got] == [_expected_error(r) for r in rows]
    for row, out_row in zip(rows, got):
        if not _expected_error(row):
            assert out_row["text"] == (_neutralized(row["text"]) if out_format in ("csv", "tsv") else row["text"])
