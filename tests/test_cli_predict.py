"""`stance predict` as a user sees it: one comment, whole files and exports, exit codes."""

import csv
import io
import json
import re
import shutil

import pytest
import typer.main
from typer.testing import CliRunner

import comment_stance as cs
from comment_stance.cli import app
from comment_stance.scoring import score_file

from .conftest import FIXTURES, REPO

EXPORTS = FIXTURES / "exports"
LABELS = ("conditional", "skeptical", "supportive")
runner = CliRunner()


def run(*args, input=None):
    return runner.invoke(app, ["predict", *[str(a) for a in args]], input=input)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model") / "m"
    cs.train(FIXTURES / "tiny", "tfidf-logreg", folder)
    return folder


def test_one_comment(model):
    result = run("--model", model, "--text", "Sign it now.")
    assert result.exit_code == 0, result.output
    label = result.output.split()[0]
    assert label in LABELS and "confidence" in result.output and " ms]" in result.output


def test_one_comment_json_with_review(model):
    result = run("--model", model, "--text", "Sign it now.", "--json", "--review-below", "0.99")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert set(row) == {"label", "confidence", "needs_review", "review_reason", *(f"p_{l}" for l in LABELS)}
    assert row["needs_review"] is True
    # no --target for a model trained with targets: flagged for that too, the more important reason first
    assert row["review_reason"] == "unknown_target;low_confidence"


def test_one_comment_from_stdin(model):
    result = run("--model", model, "-", "--json", input="Only with independent monitors.\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["label"] in LABELS


def test_one_comment_to_a_file(model, tmp_path):
    result = run("--model", model, "--text", "Sign it.", "--out", tmp_path / "one.jsonl", "--quiet")
    assert result.exit_code == 0, result.output
    row = json.loads((tmp_path / "one.jsonl").read_text())
    assert row["id"] == "1" and row["label"] in LABELS and row["error"] is None


@pytest.mark.parametrize("args, message", [
    ((), "give exactly one of INPUT, - or --text"),
    ((EXPORTS / "comments.csv", "--text", "x"), "give exactly one of INPUT, - or --text"),
    (("--text", "   "), "the comment is empty"),
    ((EXPORTS / "comments.csv", "--resume"), "--resume needs --out"),
    ((EXPORTS / "comments.csv", "--format", "xls"), "unknown input format 'xls'"),
])
def test_usage_errors_are_one_line_and_exit_1(model, args, message):
    result = run("--model", model, *args)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_file_to_file_prints_a_summary(model, tmp_path):
    out = tmp_path / "scores.csv"
    result = run("--model", model, EXPORTS / "reddit.ndjson", "--out", out, "--keep", "text,author",
                 "--review-below", "0.5")
    assert result.exit_code == 0, result.output
    assert "4 rows" in result.output and "needs_review" in result.output
    assert "line 3: comment deleted on Reddit" in result.output
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in rows] == ["r1", "r2", "r3", "r4"]
    assert list(rows[0])[:3] == ["id", "text", "author"]
    again = run("--model", model, EXPORTS / "reddit.ndjson", "--out", out)
    assert again.exit_code == 1 and "already exists" in again.output and "--overwrite" in again.output
    assert run("--model", model, EXPORTS / "reddit.ndjson", "--out", out, "--overwrite", "-q").exit_code == 0


def test_file_summary_as_json(model, tmp_path):
    result = run("--model", model, EXPORTS / "disqus.xml", "--out", tmp_path / "s.parquet", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"] == 3 and summary["errors"] == 1 and summary["output_format"] == "parquet"
    assert summary["input_format"] == "disqus"


def test_without_out_rows_go_to_stdout(model):
    result = run("--model", model, EXPORTS / "comments.jsonl", "--quiet")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["id"] for r in rows] == ["j1", "j2", "3"]
    result = run("--model", model, EXPORTS / "comments.jsonl", "--json")
    assert [r["id"] for r in json.loads(result.stdout)] == ["j1", "j2", "3"]


def test_format_can_be_forced(model, tmp_path):
    path = tmp_path / "dump.data"
    shutil.copy(EXPORTS / "wordpress.xml", path)
    result = run("--model", model, path, "--format", "wordpress", "--json")
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in json.loads(result.stdout)] == ["11", "12", "13"]


def test_xml_bomb_is_refused_cleanly(model, tmp_path):
    result = run("--model", model, EXPORTS / "bomb.xml", "--out", tmp_path / "o.csv")
    assert result.exit_code == 1
    assert "refused: the file declares XML entities" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_column_options(model, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("comment_id,body,pact\nx1,Sign it.,Pact A\nx2,Never.,Pact B\n")
    result = run("--model", model, path, "--text-col", "body", "--id-col", "comment_id", "--json")
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in json.loads(result.stdout)] == ["x1", "x2"]
    result = run("--model", model, path, "--json")
    assert result.exit_code == 1 and "--text-col" in result.output


def test_resume_from_the_command_line(model, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": f"c{i}", "text": f"Comment {i}, sign it."}) + "\n" for i in range(30)))
    out = tmp_path / "out.jsonl"

    def stop(rows, share):
        if rows >= 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_file(model, source, out, chunk_size=10, progress=stop)
    result = run("--model", model, source, "--out", out, "--chunk-size", "10")
    assert result.exit_code == 1 and "--resume" in result.output
    result = run("--model", model, source, "--out", out, "--chunk-size", "10", "--resume")
    assert result.exit_code == 0, result.output
    assert "20 of them from the interrupted run" in result.output
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [f"c{i}" for i in range(30)]


def test_help_names_the_formats():
    result = runner.invoke(app, ["predict", "--help"])
    assert result.exit_code == 0
    for word in ("disqus", "wordpress", "reddit", "article", "--resume", "--review-below"):
        assert word in result.output


def test_every_option_is_in_the_scoring_doc():
    doc = (REPO / "docs" / "scoring.md").read_text()
    command = typer.main.get_command(app).commands["predict"]
    for param in command.params:
        for flag in param.opts:
            if flag.startswith("--"):
                assert flag in doc, f"{flag} is not documented in docs/scoring.md"
    for fmt in ("csv", "tsv", "jsonl", "parquet", "disqus", "wordpress", "reddit", "article"):
        assert re.search(rf"`{fmt}`", doc), fmt


# -- issue 9 -------------------------------------------------------------------------------------------
def test_encoding_from_the_command_line(model, tmp_path):
    source = tmp_path / "cp1252.csv"
    source.write_bytes("id,text\na,Caf\u00e9 \u2013 sign it\nb,Fine.\n".encode("cp1252"))
    result = run("--model", model, source, "--out", tmp_path / "o.csv", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["errors"] == 1
    result = run("--model", model, source, "--out", tmp_path / "p.csv", "--json", "--encoding", "cp1252")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["errors"] == 0


def test_warnings_are_printed_one_line_each(model, tmp_path):
    source = tmp_path / "broken.csv"
    source.write_text("id,text\na,Fine.\nb,\"broken\n" + "".join(f"c{i},Comment {i}.\n" for i in range(200)))
    result = run("--model", model, source, "--out", tmp_path / "o.csv")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "warning:" in line]
    assert lines == [f"  warning: {source}: line 3: one record spans 201 lines (an unbalanced quote?)"]


def test_a_cut_export_says_how_many_rows_were_kept(model, tmp_path):
    from .test_scoring import disqus_export

    whole = disqus_export(60)
    source = tmp_path / "export.xml"
    source.write_text(whole[: whole.index('<post dsq:id="p50">') + 10])
    out = tmp_path / "o.csv"
    result = run("--model", model, source, "--out", out, "--chunk-size", "10")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "50 rows scored before it are kept" in result.output and "--resume" in result.output
    source.write_text(whole)
    result = run("--model", model, source, "--out", out, "--chunk-size", "10", "--resume", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["resumed_rows"] == 50
    assert [row["id"] for row in csv.DictReader(out.open())] == [f"p{i}" for i in range(60)]


def test_summary_is_not_wrapped_into_a_pipe_whatever_the_path_or_columns(model, tmp_path, monkeypatch):
    # Regression: rich wrapped the summary at 80 columns, so "4 rows" was split on a long checkout path.
    monkeypatch.setenv("COLUMNS", "30")
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 8)
    deep.mkdir(parents=True)
    out = deep / "scores.csv"
    result = run("--model", model, EXPORTS / "reddit.ndjson", "--out", out)
    assert result.exit_code == 0, result.output
    summary = [line for line in result.output.splitlines() if line.startswith(str(EXPORTS / "reddit.ndjson"))]
    assert len(summary) == 1, result.output
    assert f"-> {out} (csv): 4 rows in " in summary[0]
    assert "line 3: comment deleted on Reddit" in result.output
