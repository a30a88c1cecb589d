"""Reading and validating comment files: every bad input names the file, the row and the fix."""

import json

import pandas as pd
import pytest

from comment_stance.data import Columns, load_dataset, read_comments, split_dev, table_sha256
from comment_stance.errors import DataError


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_reads_jsonl_csv_tsv_parquet_alike(tmp_path):
    rows = [{"id": "1", "text": "Sign it.", "label": "supportive", "target": "Pact"},
            {"id": "2", "text": "Theatre.", "label": "skeptical", "target": "Pact"}]
    frame = pd.DataFrame(rows)
    write_jsonl(tmp_path / "d.jsonl", rows)
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_csv(tmp_path / "d.tsv", sep="\t", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    tables = [read_comments(tmp_path / f"d.{ext}") for ext in ("jsonl", "csv", "tsv", "parquet")]
    for table in tables:
        assert table[["id", "text", "label", "target"]].to_dict("records") == rows


def test_column_mapping(tmp_path):
    pd.DataFrame({"body": ["a b", "c d"], "stance": ["FAVOR", "AGAINST"], "Target": ["x", "y"]}).to_csv(
        tmp_path / "t.csv", index=False)
    table = read_comments(tmp_path / "t.csv", Columns(text="body", label="stance", target="Target"))
    assert table["text"].tolist() == ["a b", "c d"]
    assert table["label"].tolist() == ["FAVOR", "AGAINST"]
    assert table["target"].tolist() == ["x", "y"]
    assert table["id"].tolist() == ["2", "3"]  # spreadsheet rows when the file has no id column


def test_missing_column_names_the_flag(tmp_path):
    pd.DataFrame({"body": ["x"], "label": ["a"]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError) as err:
        read_comments(tmp_path / "t.csv")
    assert "t.csv" in str(err.value) and "missing column 'text'" in str(err.value)
    assert "--text-col" in err.value.hint


@pytest.mark.parametrize(
    "rows, expected",
    [
        ([{"text": "ok", "label": "a"}, {"text": "   ", "label": "a"}], "line 2: empty text"),
        ([{"text": "ok", "label": "a"}, {"text": 5, "label": "a"}], "line 2: text is int"),
        ([{"text": "ok", "label": "a"}, {"label": "a"}], "line 2: text is missing"),
        ([{"text": "ok", "label": "a"}, {"text": "x", "label": ""}], "line 2: missing label"),
        ([{"id": 1, "text": "ok", "label": "a"}, {"id": 1, "text": "x", "label": "b"}],
         "line 2: duplicate id '1' (first at line 1)"),
    ],
)
def test_bad_rows_are_named(tmp_path, rows, expected):
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match="bad.jsonl") as err:
        read_comments(path)
    assert expected in str(err.value)


def test_broken_json_line(tmp_path):
    (tmp_path / "b.jsonl").write_text('{"text": "ok", "label": "a"}\n{"text": oops}\n')
    with pytest.raises(DataError, match=r"b.jsonl: line 2: not valid JSON"):
        read_comments(tmp_path / "b.jsonl")


def test_undecodable_bytes_name_the_line(tmp_path):
    (tmp_path / "u.csv").write_bytes(b"text,label\nfine,a\nbad \xff\xfe byte,b\n")
    with pytest.raises(DataError, match=r"u.csv: line 3: bytes that are not UTF-8"):
        read_comments(tmp_path / "u.csv")


def test_unknown_extension(tmp_path):
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(DataError, match="unknown file type"):
        read_comments(tmp_path / "x.xlsx")


def test_dataset_folder_by_name(tiny_dir):
    ds = load_dataset(tiny_dir)
    assert (len(ds.train), len(ds.dev), len(ds.test)) == (24, 9, 9)
    assert ds.files["test"].name == "test.jsonl"


def test_missing_default_dataset_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="shipped dataset") as err:
        load_dataset(None)
    assert "--data" in err.value.hint


def test_split_dev_is_stratified_and_refuses_tiny_classes(tiny_dir):
    table = load_dataset(tiny_dir).train
    train, dev = split_dev(table, 0.25, seed=0)
    assert len(train) + len(dev) == len(table)
    assert set(dev["label"]) == set(table["label"])
    lonely = pd.concat([table, pd.DataFrame([{"id": "z", "text": "odd", "label": "rare"}])])
    with pytest.raises(DataError, match="label 'rare' has 1 example"):
        split_dev(lonely)


def test_sha256_ignores_file_format(tmp_path):
    rows = [{"id": "1", "text": "a", "label": "x"}, {"id": "2", "text": "b", "label": "y"}]
    write_jsonl(tmp_path / "a.jsonl", rows)
    pd.DataFrame(rows).to_csv(tmp_path / "a.csv", index=False)
    assert table_sha256(read_comments(tmp_path / "a.jsonl")) == table_sha256(read_comments(tmp_path / "a.csv"))


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".tab", ".parquet", ".pq"])
def test_training_reads_every_table_extension_predict_reads(tiny_dir, tmp_path, suffix):
    """`stance train --data x.json` and `stance predict x.json` read the same file types."""
    from comment_stance.readers import read_chunks

    frame = read_comments(tiny_dir / "train.jsonl")
    path = tmp_path / f"train{suffix}"
    if suffix in (".parquet", ".pq"):
        frame.to_parquet(path)
    elif suffix in (".csv", ".tsv", ".tab"):
        frame.to_csv(path, sep="," if suffix == ".csv" else "\t", index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    again = read_comments(path)
    assert list(again["id"]) == list(frame["id"]) and list(again["text"]) == list(frame["text"])
    assert sum(len(c) for c in read_chunks(path)) == len(frame)


def test_training_data_with_deeply_nested_json_is_a_clear_error(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": ' + "[" * 100_000 + "}\n")
    with pytest.raises(DataError, match="line 2: nested too deeply"):
        read_comments(path)


def test_training_data_in_another_encoding(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes("text,label\nCaf\u00e9 \u2013 sign it,supportive\nNo,skeptical\n".encode("cp1252"))
    with pytest.raises(DataError, match="line 2: bytes that are not UTF-8"):
        read_comments(path)
    assert load_dataset(path, encoding="cp1252").train["text"].tolist() == ["Caf\u00e9 \u2013 sign it", "No"]


def test_a_folder_where_a_file_is_expected_is_named_as_a_folder(tmp_path):
    with pytest.raises(DataError, match="is a folder, not a file"):
        read_comments(tmp_path)
