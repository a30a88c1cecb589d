"""Streaming readers: every input format from our own small fixtures, malformed rows, XML payloads."""

import json
import shutil

import pytest

from comment_stance import readers
from comment_stance.data import Columns
from comment_stance.errors import DataError
from comment_stance.readers import CANONICAL, detect_format, html_to_text, read_chunks

from .conftest import FIXTURES

EXPORTS = FIXTURES / "exports"


def records(path, **kwargs):
    """All records of ``path`` as dicts, with their line and error."""
    out = []
    for chunk in read_chunks(path, **kwargs):
        for i in range(len(chunk)):
            row = {name: values[i] for name, values in chunk.columns.items()}
            out.append({**row, "line": chunk.lines[i], "error": chunk.errors[i]})
    return out


def records_and_peak(path, **kwargs):
    """:func:`records`, and the peak of Python memory allocated while reading them."""
    import tracemalloc

    tracemalloc.start()
    try:
        rows = records(path, **kwargs)
        return rows, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name, expected", [
    ("comments.csv", "csv"), ("comments.tsv", "tsv"), ("comments.jsonl", "jsonl"),
    ("comments.parquet", "parquet"), ("disqus.xml", "disqus"), ("wordpress.xml", "wordpress"),
    ("reddit.ndjson", "reddit"), ("article.txt", "article"),
])
def test_format_from_extension_and_content(name, expected):
    assert detect_format(EXPORTS / name) == expected


@pytest.mark.parametrize("name, expected", [
    ("comments.csv", "csv"), ("comments.tsv", "tsv"), ("comments.jsonl", "jsonl"), ("comments.parquet", "parquet"),
    ("disqus.xml", "disqus"), ("wordpress.xml", "wordpress"), ("reddit.ndjson", "reddit"), ("article.txt", "article"),
])
def test_format_from_content_alone(tmp_path, name, expected):
    copy = tmp_path / "export"  # no extension
    shutil.copy(EXPORTS / name, copy)
    assert detect_format(copy) == expected


def test_format_can_be_forced_and_unknown_names_are_refused(tmp_path):
    copy = tmp_path / "comments.data"
    shutil.copy(EXPORTS / "reddit.ndjson", copy)
    assert detect_format(copy, "jsonl") == "jsonl"
    assert [r["text"] for r in records(copy, format="reddit")][0].startswith("Demanding")
    with pytest.raises(DataError, match="unknown input format 'xls'") as err:
        detect_format(copy, "xls")
    assert "disqus" in err.value.hint


def test_a_json_array_is_refused_with_a_fix(tmp_path):
    path = tmp_path / "comments.json"
    path.write_text('[\n  {"id": "a", "text": "Sign it."}\n]\n')
    with pytest.raises(DataError, match="one JSON array, not JSON lines") as err:
        detect_format(path)
    assert "jq -c" in err.value.hint


def test_plain_xml_that_is_no_export_is_refused(tmp_path):
    path = tmp_path / "feed.xml"
    path.write_text("<?xml version='1.0'?><feed><entry>hi</entry></feed>")
    with pytest.raises(DataError, match="neither a Disqus export nor a WordPress"):
        detect_format(path)


def test_csv_records_keep_their_line_and_columns():
    rows = records(EXPORTS / "comments.csv", keep=["score"])
    assert [r["id"] for r in rows] == ["k1", "k2", "k3", "k4", "k5"]
    # k3 spans two lines, so k4 starts on line 6
    assert [r["line"] for r in rows] == [2, 3, 4, 6, 7]
    assert rows[2]["text"] == "Nothing here is enforceable,\nand nobody will check."
    assert rows[3]["parent_id"] == "k3" and rows[0]["parent_id"] is None
    assert rows[1]["text"].startswith('=HYPERLINK("http://example.com"')
    assert [r["score"] for r in rows] == ["3", "-2", "7", "0", "1"]
    assert rows[0]["target"] == "Pact A" and rows[0]["created_at"] == "2025-10-22T09:00:00Z"
    assert all(r["error"] is None for r in rows)
    assert set(CANONICAL) <= set(rows[0])


def test_tsv_jsonl_and_parquet():
    tsv = records(EXPORTS / "comments.tsv")
    assert [(r["id"], r["line"], r["author"]) for r in tsv] == [("t1", 2, "ana"), ("t2", 3, "bob"), ("t3", 4, "cy")]
    jsonl = records(EXPORTS / "comments.jsonl", keep=["score"])
    assert [r["id"] for r in jsonl] == ["j1", "j2", "3"]  # a numeric id becomes a string
    assert [r["score"] for r in jsonl] == [3, -2, 7]  # kept JSON values keep their type
    parquet = list(read_chunks(EXPORTS / "comments.parquet", keep=["score"]))
    assert parquet[0].unit == "row" and parquet[0].lines == [1, 2, 3]
    assert parquet[0].columns["text"] == [r["text"] for r in jsonl]
    assert parquet[0].columns["parent_id"] == [None, "j1", None]


def test_column_names_are_mapped(tmp_path):
    path = tmp_path / "export.jsonl"
    path.write_text(json.dumps({"comment_id": "x1", "body": "Sign it.", "pact": "Pact A"}) + "\n")
    rows = records(path, columns=Columns(text="body", id="comment_id", target="pact"))
    assert (rows[0]["id"], rows[0]["text"], rows[0]["target"]) == ("x1", "Sign it.", "Pact A")


def test_disqus_export():
    rows = records(EXPORTS / "disqus.xml")
    assert [r["id"] for r in rows] == ["5001", "5002", "5003"]
    first, reply, deleted = rows
    assert first["text"] == "Sign it and be done with it.\nThe border has waited & waited."  # HTML to text
    assert first["author"] == "Ana Lima" and first["created_at"] == "2025-10-22T09:00:00Z"
    assert first["target"] == "Border Pact Talks Resume in the Capital" and first["article_id"] == "9001"
    assert reply["parent_id"] == "5001" and reply["text"] == "Only with independent monitors."
    assert first["parent_id"] is None
    assert deleted["error"] == "line 50: comment deleted on Disqus (no text to score)"
    assert [r["line"] for r in rows] == [24, 37, 50]


def test_wordpress_export():
    rows = records(EXPORTS / "wordpress.xml")
    assert [r["id"] for r in rows] == ["11", "12", "13"]
    assert [r["parent_id"] for r in rows] == [None, "11", None]
    assert [r["article_id"] for r in rows] == ["42", "42", "43"]
    assert [r["target"] for r in rows] == ["Border Pact Talks Resume in the Capital"] * 2 + ["Second Round of Talks Announced"]
    assert rows[0]["created_at"] == "2025-10-22T09:00:00Z"  # the GMT time
    assert rows[1]["created_at"] == "2025-10-22T11:05:00"  # no GMT time recorded: local, without a zone
    assert rows[1]["text"] == "Only with independent monitors."
    assert all(r["error"] is None for r in rows)


def test_reddit_comments():
    rows = records(EXPORTS / "reddit.ndjson", keep=["score", "subreddit"])
    assert [r["id"] for r in rows] == ["r1", "r2", "r3", "r4"]
    assert [r["parent_id"] for r in rows] == [None, "r1", "r1", None]  # t3_ parents are top level
    assert rows[0]["created_at"] == "2025-10-22T09:00:00Z" and rows[1]["created_at"] == "2025-10-22T10:00:00Z"
    assert rows[0]["article_id"] == "t3_post9"
    # the submission title is remembered from an earlier comment of the same link
    assert {r["target"] for r in rows} == {"Tehran calls for full security pact implementation"}
    assert rows[2]["error"] == "line 3: comment deleted on Reddit (no text to score)"
    assert rows[3]["text"].startswith("No country")  # {"kind": "t1", "data": {...}} unwrapped
    assert [r["score"] for r in rows] == [12, 3, 1, 5] and rows[0]["subreddit"] == "worldnews"


def test_article_page_with_alternating_lines():
    rows = records(EXPORTS / "article.txt")
    assert [r["author"] for r in rows] == ["Ana Lima", "Bob Stone", "Cy Park", "Dee Moss"]
    assert rows[0]["text"] == "Sign it and be done with it; the border has waited long enough."
    assert {r["target"] for r in rows} == {"Border Pact Talks Resume in the Capital"}
    assert [r["line"] for r in rows] == [7, 9, 11, 13]
    assert [r["id"] for r in rows] == ["article-1", "article-2", "article-3", "article-4"]


def test_article_page_with_blank_line_blocks():
    rows = records(EXPORTS / "article-blocks.txt")
    assert [r["author"] for r in rows] == ["Ana Lima", "Bob Stone", "Cy Park"]
    assert rows[0]["text"] == "Sign it and be done with it.\nThe border has waited long enough."


def test_article_page_problems(tmp_path):
    odd = tmp_path / "odd.txt"
    odd.write_text("Title\nBody\n2 Comments\nAna\nSign it.\nBob\n")
    with pytest.raises(DataError, match="line 3: 3 lines after '2 Comments'"):
        records(odd)
    none = tmp_path / "none.txt"
    none.write_text("Title\nBody without comments\n")
    with pytest.raises(DataError, match="no line such as '5 Comments'") as err:
        records(none)
    assert "--format" in err.value.hint


def test_malformed_json_lines_become_error_rows_with_their_line():
    rows = records(EXPORTS / "malformed.jsonl")
    assert len(rows) == 7  # 8 lines, one blank: nothing else is dropped
    assert [(r["line"], r["error"]) for r in rows if r["error"]] == [
        (2, "line 2: not valid JSON (Expecting ',' delimiter)"),
        (4, "line 4: empty text"),
        (5, "line 5: expected a JSON object, found list"),
        (6, "line 6: no 'text' field (pass --text-col NAME if the text is under another name)"),
        (7, "line 7: text is int, not a string"),
    ]
    assert [r["id"] for r in rows] == ["m1", "2", "m3", "5", "m5", "m6", "m7"]  # no id: the line number


def test_malformed_csv_rows_become_error_rows():
    rows = records(EXPORTS / "malformed.csv")
    assert [r["id"] for r in rows] == ["b1", "b2", "b3", "b4"]
    assert rows[1]["error"] == "line 3: 4 fields where the header has 3 (check quoting and delimiters)"
    assert rows[2]["error"] == "line 4: empty text"
    assert rows[0]["error"] is None and rows[3]["error"] is None


def test_bytes_that_are_not_utf8_mark_their_row_and_are_repaired():
    rows = records(EXPORTS / "bad-utf8.csv")
    assert [r["error"] for r in rows] == [
        None, "line 3: bytes that are not UTF-8 (pass --encoding, e.g. --encoding cp1252, or re-save the file as UTF-8)",
        "line 4: bytes that are not UTF-8 (pass --encoding, e.g. --encoding cp1252, or re-save the file as UTF-8)", None]
    assert "\ufffd" in rows[1]["text"] and rows[2]["author"] == "c\ufffdline"
    # repaired values can be written anywhere
    for row in rows:
        for value in row.values():
            if isinstance(value, str):
                value.encode("utf-8")


def test_bom_and_crlf(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfid,text\r\na,Sign it.\r\nb,\"two\r\nlines\"\r\nc,Fine.\r\n")
    rows = records(path)
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert [r["line"] for r in rows] == [2, 3, 5]


def test_fields_over_the_limit_become_error_rows(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("id,text,author\na,Short.,ana\nb," + "x" * 50 + ",bob\nc,Fine.," + "y" * 60 + "\n")
    rows = records(path, max_chars=40)
    assert rows[0]["error"] is None
    assert rows[1]["error"] == "line 3: text is 50 characters, over the limit of 40"
    assert rows[2]["error"] == "line 4: author is 60 characters, over the limit of 40"
    assert len(rows[1]["text"]) == 40 and len(rows[2]["author"]) == 40


def test_json_lines_over_the_byte_limit_are_skipped_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 100)
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"id": "a", "text": "Sign it."}) + "\n" + json.dumps({"id": "b", "text": "z" * 500})
                    + "\n" + json.dumps({"id": "c", "text": "Fine."}) + "\n")
    rows = records(path)
    assert [r["id"] for r in rows] == ["a", "2", "c"]
    assert rows[1]["error"] == "line 2: line longer than 100 bytes"


def test_xml_entity_expansion_bomb_is_refused():
    with pytest.raises(DataError, match=r"bomb.xml: line 3: refused: the file declares XML entities") as err:
        records(EXPORTS / "bomb.xml")
    assert "fresh export" in err.value.hint


def test_xml_external_entity_is_refused():
    with pytest.raises(DataError, match=r"xxe.xml: line 3: refused: the file declares XML entities"):
        records(EXPORTS / "xxe.xml")


def test_malformed_xml_names_its_line():
    with pytest.raises(DataError, match=r"malformed.xml: line 11, column \d+: malformed XML \(mismatched tag\)"):
        records(EXPORTS / "malformed.xml")


def test_xml_cut_short_is_an_error(tmp_path):
    path = tmp_path / "cut.xml"
    path.write_bytes((EXPORTS / "disqus.xml").read_bytes()[:1500])
    with pytest.raises(DataError, match="malformed XML"):
        records(path)


def test_missing_text_column_and_kept_columns(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("id,body\na,Sign it.\n")
    with pytest.raises(DataError, match=r"missing column 'text' \(columns found: id, body\)") as err:
        records(path)
    assert "--text-col" in err.value.hint
    with pytest.raises(DataError, match="--keep names column 'score'"):
        records(path, columns=Columns(text="body"), keep=["score"])
    with pytest.raises(DataError, match="--keep 'score' is not a field of a Disqus export"):
        records(EXPORTS / "disqus.xml", keep=["score"])
    with pytest.raises(DataError, match="the file is empty"):
        empty = tmp_path / "empty.csv"
        empty.write_text("")
        records(empty)


def test_chunks_hold_at_most_chunk_size_records_in_order():
    chunks = list(read_chunks(EXPORTS / "comments.csv", chunk_size=2))
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert [i for c in chunks for i in c.columns["id"]] == ["k1", "k2", "k3", "k4", "k5"]
    progress = [c.progress for c in chunks]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert chunks[1].tail(1).columns["id"] == ["k4"]
    frame = chunks[0].to_frame()
    assert list(frame["line"]) == [2, 3] and "error" in frame.columns


@pytest.mark.parametrize("fmt", ["jsonl", "disqus"])
def test_reading_streams_instead_of_loading_the_file(tmp_path, fmt):
    # the first chunk arrives long before the end of the file
    if fmt == "jsonl":
        path = tmp_path / "big.jsonl"
        path.write_text("".join(json.dumps({"id": i, "text": f"comment {i}"}) + "\n" for i in range(20_000)))
    else:
        path = tmp_path / "big.xml"
        posts = "".join(f'<post dsq:id="{i}"><message>comment {i}</message><thread dsq:id="1"/></post>\n'
                        for i in range(20_000))
        path.write_text('<?xml version="1.0"?><disqus xmlns="http://disqus.com" '
                        f'xmlns:dsq="http://disqus.com/disqus-internals">\n{posts}</disqus>\n')
    chunks = read_chunks(path, chunk_size=100)
    first = next(chunks)
    assert len(first) == 100 and first.progress < 0.5
    assert sum(len(c) for c in chunks) == 19_900


def test_html_to_text():
    assert html_to_text("<p>Sign&nbsp;it.</p><p>Now <b>&amp;</b> here<br/>then</p>") == "Sign\xa0it.\nNow & here\nthen"
    assert html_to_text(None) is None


# -- issue 9: hostile input ---------------------------------------------------------------------------
@pytest.mark.parametrize("name, line", [
    ("deep.jsonl", '{"id": "b", "text": ' + "[" * 100_000 + "}"),
    ("deep.ndjson", '{"id": "b", "body": "x", "link_id": "t3_a", "extra": ' + "[" * 100_000 + "}"),
])
def test_deeply_nested_json_is_an_error_row(tmp_path, name, line):
    path = tmp_path / name
    first = {"id": "a", "text": "Sign it.", "body": "Sign it.", "link_id": "t3_a"}
    path.write_text(json.dumps(first) + "\n" + line + "\n" + json.dumps({**first, "id": "c"}) + "\n")
    rows = records(path)
    assert [r["id"] for r in rows] == ["a", "2", "c"]
    assert rows[1]["error"] == "line 2: nested too deeply to read"
    assert rows[0]["error"] is None and rows[2]["error"] is None


def test_a_field_over_the_limit_is_cut_while_reading(tmp_path):
    """A chunk never holds more than --max-chars of any field, even transiently."""
    path = tmp_path / "huge.csv"
    with open(path, "w") as handle:
        handle.write("id,text\n")
        for i in range(5):
            handle.write(f"r{i}," + "x" * 4_000_000 + "\n")
    rows, peak = records_and_peak(path, max_chars=1000, chunk_size=10)
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(5)]
    assert all(r["error"] == f"line {i + 2}: text is over the limit of 1000 characters"
               for i, r in enumerate(rows))
    assert all(len(r["text"]) == 1000 for r in rows)
    assert peak < 12_000_000  # one 4 MB field at a time at most, never the chunk's 20 MB


def test_a_giant_multiline_field_does_not_become_extra_rows(tmp_path):
    path = tmp_path / "quoted.csv"
    body = "\n".join("y" * 100 for _ in range(50))
    path.write_text(f'id,text\na,Fine.\nb,"{body}"\nc,Also fine.\n')
    rows = records(path, max_chars=500)
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert rows[1]["error"] == "line 3: text is over the limit of 500 characters"
    assert rows[2]["line"] == 53 and rows[2]["error"] is None


def test_an_unbalanced_quote_gives_a_warning_with_the_line(tmp_path):
    path = tmp_path / "broken.csv"
    lines = ["id,text", "a,Fine.", 'b,"broken quote'] + [f"c{i},Comment {i}." for i in range(300)]
    path.write_text("\n".join(lines) + "\n")
    chunks = list(read_chunks(path))
    warnings = [w for chunk in chunks for w in chunk.warnings]
    assert sum(len(c) for c in chunks) == 2
    assert warnings == [f"{path}: line 3: one record spans 301 lines (an unbalanced quote?)"]


def test_csv_field_size_limit_is_left_as_it_was(tmp_path):
    import csv

    before = csv.field_size_limit(131_072)
    try:
        list(read_chunks(EXPORTS / "comments.csv"))
        assert csv.field_size_limit() == 131_072
    finally:
        csv.field_size_limit(before)


def test_parquet_text_is_cut_before_it_is_expanded(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"id": ["a", "b", *[f"x{i}" for i in range(20)]],
                             "text": ["Fine.", "z" * 2_000_000, *["y" * 2_000_000] * 20]}), path)
    rows, peak = records_and_peak(path, max_chars=100)
    assert peak < 10_000_000  # 42 MB of text never becomes Python strings
    assert [r["id"] for r in rows[:2]] == ["a", "b"] and len(rows) == 22
    assert rows[1]["error"] == "row 2: text is 2000000 characters, over the limit of 100" and len(rows[1]["text"]) == 100


def test_xml_text_is_capped_while_parsing(tmp_path):
    path = tmp_path / "huge.xml"
    source = (EXPORTS / "disqus.xml").read_text()
    giant = "<p>" + "w" * 20_000_000 + "</p>"
    start = source.index("<message>") + len("<message>")
    path.write_text(source[:start] + giant.replace("<", "&lt;").replace(">", "&gt;") + source[source.index("</message>", start):])
    rows, peak = records_and_peak(path, max_chars=1000)
    assert rows[0]["error"].endswith("text is over the limit of 1000 characters")
    assert len(rows[0]["text"]) == 1000
    assert [r["error"] for r in rows[1:]] == [r["error"] for r in records(EXPORTS / "disqus.xml")[1:]]
    assert peak < 30_000_000  # the 20 M-character message is never held whole


def test_another_encoding(tmp_path):
    path = tmp_path / "cp1252.csv"
    path.write_bytes("id,text\na,Caf\u00e9 \u201cnow\u201d\nb,Fine.\n".encode("cp1252"))
    rows = records(path)
    assert "--encoding" in rows[0]["error"]
    rows = records(path, encoding="cp1252")
    assert rows[0]["text"] == "Caf\u00e9 \u201cnow\u201d" and rows[0]["error"] is None
    jsonl = tmp_path / "cp1252.jsonl"
    jsonl.write_bytes('{"id": "a", "text": "Caf\u00e9"}\n'.encode("cp1252"))
    assert "--encoding" in records(jsonl)[0]["error"]
    assert records(jsonl, encoding="cp1252")[0]["text"] == "Caf\u00e9"
    with pytest.raises(DataError, match="unknown encoding"):
        records(path, encoding="no-such-codec")


def test_one_detect_format_for_training_and_scoring(tmp_path):
    from comment_stance import data, formats

    assert not hasattr(data, "detect_format") or data.detect_format is formats.detect_format
    assert readers.detect_format is formats.detect_format
