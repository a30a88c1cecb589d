"""Batch scoring: every row once and in order, output formats, formula neutralization, resume."""

import csv
import io
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import comment_stance as cs
from comment_stance.errors import DataError, OutputError
from comment_stance.models.baselines import MajorityModel
from comment_stance.readers import read_chunks
from comment_stance.scoring import predict, proba_column, score_file
from comment_stance.writers import neutralize

from .conftest import FIXTURES, REPO

EXPORTS = FIXTURES / "exports"
LABELS = ["conditional", "skeptical", "supportive"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model") / "m"
    cs.train(FIXTURES / "tiny", "tfidf-logreg", folder)
    return folder


@pytest.fixture(scope="module")
def model(model_dir):
    return cs.load_model(model_dir)


class SpyModel(MajorityModel):
    """A majority model that records the tables it is asked to score."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def predict_proba(self, X):
        self.seen.append(X.copy())
        return super().predict_proba(X)


def spy():
    return SpyModel().fit(["a", "b", "c"], LABELS)


def read_output(path):
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype={"id": str})
    return pd.read_csv(path, dtype={"id": str}, keep_default_na=False, na_values=[""])


def big_csv(path, rows=250):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "target", "parent_id"])
        for i in range(rows):
            text = "" if i % 37 == 5 else f"Comment {i}: " + ["Sign it now.", "Only with monitors.", "Toothless."][i % 3]
            writer.writerow([f"c{i}", text, "Pact A" if i % 2 else "Pact B", f"c{i - 1}" if i % 4 == 3 else ""])
    return path


# -- the Python API of the foundation issue stays ---------------------------------------------------
def test_predict_keeps_its_contract(model_dir, model):
    frame = predict(model_dir, ["Sign it now.", "Only with monitors."])
    assert list(frame.columns) == ["label", "confidence", *map(proba_column, LABELS)]
    table = pd.DataFrame({"id": ["a", "b"], "text": ["Sign it.", "Never."]})
    scored = predict(model, table, review_below=0.9)
    assert list(scored["id"]) == ["a", "b"] and scored["needs_review"].all()


# -- every row once, in order ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["comments.csv", "comments.tsv", "comments.jsonl", "comments.parquet", "disqus.xml",
                                  "wordpress.xml", "reddit.ndjson", "article.txt", "malformed.jsonl",
                                  "malformed.csv", "bad-utf8.csv"])
def test_every_input_row_appears_once_in_order(model, tmp_path, name):
    ids = [i for chunk in read_chunks(EXPORTS / name) for i in chunk.columns["id"]]
    errors = sum(e is not None for chunk in read_chunks(EXPORTS / name) for e in chunk.errors)
    summary = score_file(model, EXPORTS / name, tmp_path / "out.jsonl", chunk_size=2)
    out = read_output(tmp_path / "out.jsonl")
    assert list(out["id"]) == ids
    assert summary.rows == len(ids) and summary.errors == errors == out["error"].notna().sum()
    assert sum(summary.label_counts.values()) == summary.scored == len(ids) - errors


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_output_formats_hold_the_same_scores(model, tmp_path, suffix):
    out = tmp_path / f"scores{suffix}"
    score_file(model, EXPORTS / "malformed.jsonl", out, keep=["text"], review_below=0.45)
    frame = read_output(out) if suffix != ".tsv" else pd.read_csv(out, sep="\t", dtype={"id": str})
    assert list(frame.columns) == ["id", "text", "label", "confidence", *map(proba_column, LABELS),
                                   "needs_review", "review_reason", "error"]
    ok = frame["error"].isna()
    assert ok.sum() == 2
    proba = frame.loc[ok, list(map(proba_column, LABELS))].to_numpy(dtype=float)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    table = pd.DataFrame({"text": ["Good start, sign it.", "Fine if it is reciprocal."]})
    np.testing.assert_allclose(proba, model.predict_proba(table), rtol=1e-6)
    np.testing.assert_allclose(frame.loc[ok, "confidence"].astype(float), proba.max(axis=1), rtol=1e-6)
    # rows that cannot be scored have no scores but keep their place and say why
    assert frame.loc[~ok, "label"].isna().all() and frame.loc[~ok, "confidence"].isna().all()
    assert frame.loc[1, "error"].startswith("line 2: not valid JSON")
    assert not (tmp_path / f"scores{suffix}.partial").exists()
    assert not (tmp_path / f"scores{suffix}.partial.json").exists()


def test_needs_review_follows_the_threshold(model, tmp_path):
    # with a target, only the confidence decides (the tiny model was trained with targets)
    summary = score_file(model, EXPORTS / "disqus.xml", tmp_path / "o.jsonl", review_below=0.45, target="Pact A")
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    for row in rows:
        if row["error"] is None:
            assert row["needs_review"] == (row["confidence"] < 0.45)
            assert row["review_reason"] == ("low_confidence" if row["confidence"] < 0.45 else None)
        else:
            assert row["needs_review"] is None and row["review_reason"] is None
    assert summary.needs_review == sum(bool(r["needs_review"]) for r in rows)
    # the export's thread titles are the targets; a comment without one is flagged, since the
    # model reads targets
    scored = predict(model, pd.DataFrame({"text": ["Sign it.", "Sign it."], "target": ["Pact A", None]}),
                     review_below=0.0)
    assert scored["review_reason"].tolist() == [None, "unknown_target"]
    assert scored["needs_review"].tolist() == [False, True]
    without = score_file(model, EXPORTS / "disqus.xml", tmp_path / "p.jsonl")
    assert without.needs_review is None and "needs_review" not in (tmp_path / "p.jsonl").read_text()


def test_csv_cells_that_would_run_as_formulas_are_neutralized(model, tmp_path):
    score_file(model, EXPORTS / "comments.csv", tmp_path / "o.csv", keep=["text", "author", "score"])
    with open(tmp_path / "o.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[1]["text"].startswith("'=HYPERLINK(")
    assert rows[1]["author"] == "'@bob" and rows[3]["author"] == "'-dee"
    assert rows[3]["text"] == "'+1 if refugees are protected."
    assert rows[1]["score"] == "-2"  # a number is no formula
    # JSONL keeps values as they are
    score_file(model, EXPORTS / "comments.csv", tmp_path / "o.jsonl", keep=["text"])
    assert json.loads((tmp_path / "o.jsonl").read_text().splitlines()[1])["text"].startswith("=HYPERLINK(")


def test_neutralize():
    assert neutralize("=1+1") == "'=1+1"
    assert neutralize("\tcmd") == "'\tcmd" and neutralize("\uff1dSUM(A1)") == "'\uff1dSUM(A1)"
    assert neutralize("-0.5") == "-0.5" and neutralize("+3") == "+3"
    assert neutralize("safe") == "safe" and neutralize("") == "" and neutralize(None) is None


def test_kept_columns_that_clash_with_outputs_are_renamed(model, tmp_path):
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps({"id": "a", "text": "Sign it.", "label": "supportive"}) + "\n")
    score_file(model, path, tmp_path / "o.jsonl", keep=["label", "id"])
    row = json.loads((tmp_path / "o.jsonl").read_text())
    assert row["input_label"] == "supportive" and row["label"] in LABELS
    assert list(row)[:2] == ["id", "input_label"]


def test_target_and_parent_text_reach_the_model(tmp_path):
    model = spy()
    score_file(model, EXPORTS / "comments.csv", tmp_path / "o.csv", chunk_size=1)
    seen = pd.concat(model.seen, ignore_index=True)
    assert max(len(x) for x in model.seen) == 1  # chunk by chunk
    assert list(seen["target"]) == ["Pact A", "Pact A", "Pact A", "Pact B", "Pact B"]
    # k2 replies to k1 and k4 to k3, each parent in an earlier chunk
    assert seen.loc[1, "parent_text"] == "Sign it and be done with it."
    assert seen.loc[3, "parent_text"] == "Nothing here is enforceable,\nand nobody will check."
    assert seen["parent_text"].isna().sum() == 3
    model = spy()
    score_file(model, EXPORTS / "disqus.xml", tmp_path / "d.csv", target="the border pact")
    assert set(pd.concat(model.seen)["target"]) == {"the border pact"}
    assert len(pd.concat(model.seen)) == 2  # the deleted post is not shown to the model


def test_a_chunk_of_only_errors_does_not_call_the_model(tmp_path):
    path = tmp_path / "empty-texts.csv"
    path.write_text("id,text\na,\nb,   \n")
    model = spy()
    summary = score_file(model, path, tmp_path / "o.csv")
    assert model.seen == [] and summary.errors == 2 and summary.rows == 2


def test_stream_output(model):
    buffer = io.StringIO()
    summary = score_file(model, EXPORTS / "comments.jsonl", buffer, out_format="json", chunk_size=2)
    rows = json.loads(buffer.getvalue())
    assert [r["id"] for r in rows] == ["j1", "j2", "3"] and summary.output is None
    buffer = io.StringIO()
    score_file(model, EXPORTS / "comments.jsonl", buffer)
    assert list(csv.DictReader(io.StringIO(buffer.getvalue())))[2]["id"] == "3"


def test_empty_input_still_writes_a_header(model, tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    summary = score_file(model, path, tmp_path / "o.csv")
    assert summary.rows == 0
    assert (tmp_path / "o.csv").read_text().startswith("id,label,confidence,p_conditional")
    score_file(model, path, tmp_path / "o.parquet")
    assert len(pd.read_parquet(tmp_path / "o.parquet")) == 0


# -- output safety --------------------------------------------------------------------------------------
def test_an_existing_output_is_not_overwritten(model, tmp_path):
    out = tmp_path / "o.csv"
    out.write_text("precious\n")
    with pytest.raises(OutputError, match="already exists") as err:
        score_file(model, EXPORTS / "comments.csv", out)
    assert "--overwrite" in err.value.hint and out.read_text() == "precious\n"
    score_file(model, EXPORTS / "comments.csv", out, overwrite=True)
    assert out.read_text().startswith("id,label")
    with pytest.raises(OutputError, match="is the input file"):
        score_file(model, EXPORTS / "comments.csv", EXPORTS / "comments.csv", overwrite=True)
    with pytest.raises(OutputError, match="cannot tell the output format"):
        score_file(model, EXPORTS / "comments.csv", tmp_path / "o.xlsx")


def test_a_file_broken_before_any_row_leaves_no_output_behind(model, tmp_path):
    source = tmp_path / "broken.xml"
    source.write_text('<?xml version="1.0"?>\n<disqus xmlns="http://disqus.com">\n<post><message>a</mess\n')
    out = tmp_path / "o.csv"
    with pytest.raises(DataError, match="line 3"):
        score_file(model, source, out, chunk_size=100)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.xml"]
    with pytest.raises(DataError, match="line 11") as err:  # rows before the break: kept, and said so
        score_file(model, EXPORTS / "malformed.xml", out, chunk_size=100)
    assert "rows scored before it are kept" in str(err.value) and not out.exists()


# -- resume ----------------------------------------------------------------------------------------------
class Interrupt(Exception):
    pass


def interrupt_after(chunks):
    def progress(rows, share):
        progress.calls += 1
        if progress.calls == chunks:
            raise Interrupt
    progress.calls = 0
    return progress


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_an_interrupted_job_resumes_without_losing_or_duplicating_rows(model, tmp_path, suffix):
    source = big_csv(tmp_path / "in.csv")
    reference = tmp_path / f"reference{suffix}"
    full = score_file(model, source, reference, chunk_size=40, review_below=0.4)
    out = tmp_path / f"out{suffix}"
    with pytest.raises(Interrupt):
        score_file(model, source, out, chunk_size=40, review_below=0.4, progress=interrupt_after(3))
    assert not out.exists() and (tmp_path / f"out{suffix}.partial").exists()
    with pytest.raises(OutputError, match="an interrupted job left this behind") as err:
        score_file(model, source, out, chunk_size=40, review_below=0.4)
    assert "--resume" in err.value.hint
    # a different chunk size does not matter: rows are counted, not chunks
    resumed = score_file(model, source, out, chunk_size=25, review_below=0.4, resume=True)
    assert resumed.resumed_rows == 120 and resumed.rows == 250
    pd.testing.assert_frame_equal(read_output(out), read_output(reference))
    assert (resumed.label_counts, resumed.errors, resumed.needs_review) == (full.label_counts, full.errors,
                                                                          full.needs_review)
    assert not (tmp_path / f"out{suffix}.partial").exists() and not (tmp_path / f"out{suffix}.partial.json").exists()


KILL_SCRIPT = """
import os, signal, sys
from comment_stance.scoring import score_file
calls = []
def progress(rows, share):
    calls.append(rows)
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
score_file(sys.argv[1], sys.argv[2], sys.argv[3], chunk_size=40, progress=progress)
"""


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_killed_job_resumes(model_dir, tmp_path, suffix):
    source = big_csv(tmp_path / "in.csv")
    out = tmp_path / f"out{suffix}"
    killed = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(model_dir), str(source), str(out)],
                            cwd=REPO, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert not out.exists()
    partial = tmp_path / f"out{suffix}.partial"
    if suffix == ".csv":  # as if the job had died in the middle of writing a chunk
        with open(partial, "ab") as handle:
            handle.write(b"c999,half a row")
    else:
        (partial / "part-00000003.parquet").write_bytes(b"PAR1 half a part")
    summary = score_file(model_dir, source, out, chunk_size=40, resume=True)
    assert summary.resumed_rows == 120
    frame = read_output(out)
    assert list(frame["id"]) == [f"c{i}" for i in range(250)]  # count and order
    reference = tmp_path / f"reference{suffix}"
    score_file(model_dir, source, reference)
    pd.testing.assert_frame_equal(frame, read_output(reference))


def test_resume_refuses_a_changed_input_or_model(model, tmp_path):
    source = big_csv(tmp_path / "in.csv")
    out = tmp_path / "out.csv"
    with pytest.raises(Interrupt):
        score_file(model, source, out, chunk_size=40, progress=interrupt_after(2))
    with pytest.raises(OutputError, match="cannot resume: the options changed") as err:
        score_file(model, source, out, chunk_size=40, resume=True, review_below=0.5)
    assert "--overwrite" in err.value.hint
    with pytest.raises(OutputError, match="cannot resume: the model changed"):
        score_file(spy(), source, out, chunk_size=40, resume=True)
    big_csv(source, rows=260)
    with pytest.raises(OutputError, match="cannot resume: the input file changed"):
        score_file(model, source, out, chunk_size=40, resume=True)
    # --resume --overwrite: continue when possible, else start over
    summary = score_file(model, source, out, chunk_size=40, resume=True, overwrite=True)
    assert summary.resumed_rows == 0 and summary.rows == 260


def test_resume_with_nothing_to_resume_starts_from_the_beginning(model, tmp_path):
    summary = score_file(model, EXPORTS / "comments.csv", tmp_path / "o.csv", resume=True)
    assert summary.rows == 5 and summary.resumed_rows == 0


def test_summary_as_dict(model, tmp_path):
    summary = score_file(model, EXPORTS / "reddit.ndjson", tmp_path / "o.csv")
    data = summary.as_dict()
    assert data["rows"] == 4 and data["errors"] == 1 and data["input_format"] == "reddit"
    assert data["first_errors"] == ["line 3: comment deleted on Reddit (no text to score)"]
    json.dumps(data)
    assert os.fspath(tmp_path / "o.csv") == data["output"]


def test_resume_drops_leftovers_it_cannot_continue(model, tmp_path):
    out = tmp_path / "o.csv"
    (tmp_path / "o.csv.partial.json").write_text('{"version": 1, "rows_do')  # cut short
    with pytest.raises(OutputError, match="an interrupted job left this behind"):
        score_file(model, EXPORTS / "comments.csv", out)
    summary = score_file(model, EXPORTS / "comments.csv", out, resume=True)
    assert summary.rows == 5 and summary.resumed_rows == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.csv"]


# -- issue 9 ----------------------------------------------------------------------------------------------
def disqus_export(posts: int, threads: int = 3) -> str:
    """A Disqus export written here by hand (not by the reader under test)."""
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<disqus xmlns="http://disqus.com" '
             'xmlns:dsq="http://disqus.com/disqus-internals">\n']
    for t in range(threads):
        parts.append(f'  <thread dsq:id="t{t}">\n    <title>Pact {t}</title>\n  </thread>\n')
    for i in range(posts):
        words = ["Sign it now.", "Only with monitors.", "Toothless."][i % 3]
        parts.append(f'  <post dsq:id="p{i}">\n    <message><![CDATA[<p>Comment {i}: {words}</p>]]></message>\n'
                     f'    <thread dsq:id="t{i % threads}"/>\n  </post>\n')
    parts.append("</disqus>\n")
    return "".join(parts)


def test_an_export_cut_short_keeps_what_was_scored_and_resumes(model, tmp_path):
    whole = disqus_export(300)
    source = tmp_path / "export.xml"
    source.write_text(whole[: whole.index('<post dsq:id="p250">') + 30])  # cut in the middle of post 250
    out = tmp_path / "o.csv"
    with pytest.raises(DataError, match="malformed XML") as err:
        score_file(model, source, out, chunk_size=20)
    kept = int(json.loads((tmp_path / "o.csv.partial.json").read_text())["rows_done"])
    assert kept == 250 and "250 rows scored before it are kept" in str(err.value)  # every complete post
    assert "--resume" in err.value.hint and not out.exists()
    # the same input again: the same error, and nothing already scored is lost
    with pytest.raises(DataError, match="malformed XML"):
        score_file(model, source, out, chunk_size=20, resume=True)
    assert int(json.loads((tmp_path / "o.csv.partial.json").read_text())["rows_done"]) == kept
    assert not out.exists()
    # the complete export: the job continues from where it stopped
    source.write_text(whole)
    summary = score_file(model, source, out, chunk_size=20, resume=True)
    assert summary.resumed_rows == kept and summary.rows == 300
    reference = tmp_path / "reference.csv"
    score_file(model, source, reference, chunk_size=20)
    assert out.read_bytes() == reference.read_bytes()


def test_a_fixed_input_that_changes_scored_rows_is_refused(model, tmp_path):
    whole = disqus_export(300)
    source = tmp_path / "export.xml"
    source.write_text(whole[: whole.index('<post dsq:id="p250">') + 30])
    out = tmp_path / "o.csv"
    with pytest.raises(DataError):
        score_file(model, source, out, chunk_size=20)
    source.write_text(whole.replace("Comment 3:", "Changed 3:"))
    with pytest.raises(OutputError, match="the rows already scored differ"):
        score_file(model, source, out, chunk_size=20, resume=True)


def test_resume_refuses_other_runtime_settings(model_dir, tmp_path):
    source = big_csv(tmp_path / "in.csv")
    out = tmp_path / "out.csv"
    with pytest.raises(Interrupt):
        score_file(model_dir, source, out, chunk_size=40, progress=interrupt_after(2))
    for runtime in ({"quantize": "int8"}, {"max_length": 64}):
        fake = cs.load_model(model_dir)
        fake.get_params = lambda deep=False, extra=runtime, real=fake.get_params: {**real(deep=deep), **extra}
        with pytest.raises(OutputError, match="cannot resume: the model's runtime settings changed") as err:
            score_file(fake, source, out, chunk_size=40, resume=True)
        assert "--overwrite" in err.value.hint
    summary = score_file(model_dir, source, out, chunk_size=40, resume=True)
    assert summary.resumed_rows == 80 and summary.rows == 250


def test_runtime_settings_that_do_not_change_scores_do_not_block_resume(model_dir, tmp_path):
    from comment_stance.scoring import _runtime_fingerprint

    model = cs.load_model(model_dir)
    base = _runtime_fingerprint(model)
    fake = cs.load_model(model_dir)
    real = fake.get_params
    fake.get_params = lambda deep=False: {**real(deep=deep), "threads": 3}
    assert _runtime_fingerprint(fake) == base
    for setting in ({"quantize": "int8"}, {"inference_batch_size": 7}, {"max_length": 64}):
        fake.get_params = lambda deep=False, setting=setting: {**real(deep=deep), **setting}
        assert _runtime_fingerprint(fake) != base, setting


def test_encoding_option(model, tmp_path):
    source = tmp_path / "cp1252.csv"
    source.write_bytes("id,text\na,Caf\u00e9 \u2013 sign it\nb,Fine.\n".encode("cp1252"))
    summary = score_file(model, source, tmp_path / "o.csv")
    assert summary.errors == 1 and "--encoding" in summary.first_errors[0]
    summary = score_file(model, source, tmp_path / "p.csv", encoding="cp1252", keep=["text"])
    assert summary.errors == 0
    assert pd.read_csv(tmp_path / "p.csv")["text"].tolist() == ["Caf\u00e9 \u2013 sign it", "Fine."]


def test_warnings_reach_the_summary(model, tmp_path):
    source = tmp_path / "broken.csv"
    source.write_text("id,text\na,Fine.\nb,\"broken\n" + "".join(f"c{i},Comment {i}.\n" for i in range(200)))
    summary = score_file(model, source, tmp_path / "o.csv")
    assert summary.rows == 2
    assert summary.warnings == [f"{source}: line 3: one record spans 201 lines (an unbalanced quote?)"]


def test_a_lone_carriage_return_in_a_cell_is_quoted(model, tmp_path):
    """Found by the property tests: the csv module quotes "\\n" but not a lone "\\r", which every
    CSV reader takes as the end of a line (one row became two)."""
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "a", "text": "one\rtwo"}) + "\n" + json.dumps({"id": "b", "text": "ok"}) + "\n")
    score_file(model, source, tmp_path / "o.csv", keep=["text"])
    with open(tmp_path / "o.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["id"], r["text"]) for r in rows] == [("a", "one\rtwo"), ("b", "ok")]


def test_stream_json_keeps_unicode_line_separators_inside_strings(model, tmp_path):
    """`stance predict FILE --json` wrote invalid JSON when a comment held U+2028 or U+0085."""
    source = tmp_path / "in.jsonl"
    texts = ["one\u2028two", "three\x85four", "five\x0bsix\x1cseven"]
    source.write_text("".join(json.dumps({"id": f"c{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    buffer = io.StringIO()
    score_file(model, source, buffer, out_format="json", keep=["text"], chunk_size=2)
    assert [row["text"] for row in json.loads(buffer.getvalue())] == texts
