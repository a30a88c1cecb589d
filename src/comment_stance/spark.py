"""Apache Spark as a front door to the scoring core (``pip install 'comment-stance[spark]'``).

* :func:`score_dataframe`: score a Spark DataFrame; the same columns as ``stance predict``.
* :func:`predict_files`: ``stance predict --engine spark``: files, folders and globs in,
  partitioned Parquet (or JSON lines, CSV) out, with the promises of the single-machine path.
* :func:`evaluate_files`: ``stance evaluate --engine spark``: metrics from distributed
  confusion counts.

The work per batch is done by :mod:`comment_stance.batches` (pandas in, pandas out, calling
:func:`comment_stance.scoring.score_chunk`); this module only translates to and from Spark.
The model folder travels with the job (``SparkContext.addFile``) or is read from storage every
worker sees; either way each worker checks it against a sha256 manifest made on the driver and
loads it once per Python worker process. See docs/spark.md.
"""

from __future__ import annotations

import glob as globbing
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .errors import DataError, OutputError, StanceError

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from .data import Columns

#: rows per Arrow batch handed to a Python worker (spark.sql.execution.arrow.maxRecordsPerBatch)
ARROW_BATCH_ROWS = 10_000
#: a Parquet file is split into tasks of about this many rows (whole row groups) when it has no
#: parent ids; with parent ids a file stays one task so that replies find their parents as in
#: ``stance predict``
ROWS_PER_TASK = 200_000
OUTPUT_FORMATS = {"parquet": "parquet", "jsonl": "json", "csv": "csv"}
_SKIP = ("_", ".")  # Spark/Hadoop bookkeeping (_SUCCESS, .crc) and hidden files in input folders


def _pyspark():
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise StanceError("the Spark engine needs pyspark", "pip install 'comment-stance[spark]'") from None


def spark_session(master: str = "local[*]", conf: dict[str, str] | None = None,
                  app_name: str = "stance") -> "SparkSession":
    """A Spark session for the CLI: ``master`` and ``conf`` (``spark.*`` options) as given; an
    already running session is reused (with ``conf`` applied where Spark allows)."""
    _pyspark()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name).master(master)
    options = {"spark.sql.execution.arrow.maxRecordsPerBatch": str(ARROW_BATCH_ROWS), **(conf or {})}
    # BLAS/OpenMP threads per Python worker: its task's cores (Spark's default: all the executor's)
    options.setdefault("spark.executorEnv.OMP_NUM_THREADS", options.get("spark.task.cpus", "1"))
    if master.startswith("local") and "spark.pyspark.python" not in options and not os.environ.get("PYSPARK_PYTHON"):
        import sys

        # local workers run this interpreter (with its packages), not whatever 'python3' is first on PATH
        os.environ["PYSPARK_PYTHON"] = sys.executable
    for key, value in options.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def parse_conf(pairs: Sequence[str]) -> dict[str, str]:
    """``["KEY=VALUE", ...]`` (``--spark-conf``) to a dict; a pair without ``=`` is an error."""
    conf = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DataError(f"--spark-conf '{pair}' is not KEY=VALUE", "e.g. --spark-conf spark.executor.memory=4g")
        conf[key.strip()] = value.strip()
    return conf


# -- the model on the workers ----------------------------------------------------------------------
class _ModelShipment:
    """What a worker needs to find and check the model: its path (or addFile name) and manifest."""

    def __init__(self, spark: "SparkSession", model_dir: str | Path, *, distribute: bool):
        from .batches import folder_manifest
        from .persist import read_config

        folder = Path(model_dir)
        config = read_config(folder)  # a clear error for a folder that is no model, before any task
        self.labels = [str(c) for c in config["labels"]]
        #: a model with an off-topic gate always adds needs_review and review_reason (scoring.output_columns)
        self.gated = bool(config.get("off_topic"))
        self.manifest = folder_manifest(folder)
        self.distribute = distribute
        self.path = str(folder.resolve())
        self.name = folder.resolve().name
        if distribute:
            context = spark.sparkContext
            # addFile refuses the same name twice in one application; a re-run ships the same path
            try:
                context.addFile(self.path, recursive=True)
            except Exception as exc:  # py4j wraps Spark's IllegalArgumentException
                if "already registered" not in str(exc) and "added multiple times" not in str(exc):
                    raise
        self.threads = _task_cpus(spark)

    def locate(self) -> str:
        """On a worker: the model folder's path there."""
        if not self.distribute:
            return self.path
        from pyspark import SparkFiles

        return SparkFiles.get(self.name)


def _task_cpus(spark: "SparkSession") -> int:
    """Cores each task may use: torch's thread count per Python worker, so that the executor's
    tasks together use the executor's cores and no more."""
    try:
        return max(1, int(spark.conf.get("spark.task.cpus", "1")))
    except ValueError:
        return 1


# -- schema ----------------------------------------------------------------------------------------
def _output_schema(labels: Sequence[str], keep: Sequence[str], review_below: float | None,
                   kept_types: dict[str, Any] | None = None, *, gated: bool = False):
    """The Spark schema of scored output: :func:`comment_stance.scoring.output_columns`, whose
    typed columns map to Spark types; kept columns take ``kept_types`` (default: string)."""
    from pyspark.sql.types import BooleanType, DoubleType, LongType, StringType, StructField, StructType

    from .scoring import output_columns

    names, types = output_columns(labels, keep, review_below, review=True if gated else None)
    spark_types = {"str": StringType(), "float": DoubleType(), "bool": BooleanType(), "int": LongType()}
    kept_names = [k for k in dict.fromkeys(keep) if k != "id"]
    kept_out = dict(zip(names[1:1 + len(kept_names)], kept_names))
    fields = []
    for name in names:
        if name in types:
            kind = spark_types.get(types[name])
            if kind is None:  # a column type the core added that we do not know yet
                raise StanceError(f"the scoring core's column '{name}' has type '{types[name]}', "
                                  "which the Spark engine cannot map", "update comment_stance.spark")
        else:
            kind = (kept_types or {}).get(kept_out.get(name, name), StringType())
        fields.append(StructField(name, kind, True))
    return StructType(fields), names


# -- a DataFrame -----------------------------------------------------------------------------------
def score_dataframe(
    df: "DataFrame",
    model_dir: str | Path,
    *,
    text_col: str = "text",
    id_col: str = "id",
    target_col: str | None = "target",
    parent_id_col: str | None = None,
    parent_text_col: str | None = None,
    keep: Sequence[str] = (),
    target: str | None = None,
    review_below: float | None = None,
    max_chars: int | None = None,
    distribute: bool = True,
    runtime: dict[str, Any] | None = None,
) -> "DataFrame":
    """Score a Spark DataFrame with the model in ``model_dir``; lazy, like any transformation.

    Returns the columns of ``stance predict`` (``id``, the ``keep`` columns, ``label``,
    ``confidence``, ``p_<label>`` per label, ``needs_review`` with ``review_below``, ``error``),
    one row per input row. Rows that cannot be scored (no text, empty text, a field over
    ``max_chars``, no id) are kept with their ``error``. ``distribute=False`` reads the model
    from ``model_dir`` on every worker (shared storage) instead of shipping it with the job.
    Parents of replies are looked up only through ``parent_id_col`` + ``parent_text_col``.

    For example (``spark`` being a running session)::

        scored = score_dataframe(spark.read.parquet("comments/"), "models/tfidf-logreg",
                                 keep=["author"], review_below=0.6)
    """
    from .batches import FrameSpec, score_frame, worker_model

    spark = df.sparkSession
    for name in [text_col, *keep]:
        if name not in df.columns:
            raise DataError(f"the DataFrame has no column '{name}' (columns: {', '.join(df.columns)})",
                            "pass the column names with text_col=, id_col=, keep=")
    if id_col not in df.columns:
        raise DataError(f"the DataFrame has no id column '{id_col}'",
                        "add one (e.g. from _metadata.file_path and _metadata.row_index for Parquet) or pass id_col=")
    shipment = _ModelShipment(spark, model_dir, distribute=distribute)
    kept_types = {f.name: f.dataType for f in df.schema.fields}
    schema, names = _output_schema(shipment.labels, keep, review_below, kept_types, gated=shipment.gated)
    spec = FrameSpec(text_col=text_col, id_col=id_col,
                     target_col=target_col if target_col in df.columns else None,
                     parent_id_col=parent_id_col, parent_text_col=parent_text_col, keep=tuple(keep),
                     target=target, review_below=review_below, max_chars=max_chars)
    settings = {"threads": shipment.threads, **(runtime or {})}
    wanted = list(dict.fromkeys(c for c in (id_col, text_col, spec.target_col, parent_id_col, parent_text_col, *keep)
                                if c is not None))

    def run(batches):
        model = worker_model(shipment.locate(), shipment.manifest, **settings)
        for batch in batches:
            yield score_frame(model, batch, spec)[names]

    return df.select(*wanted).mapInPandas(run, schema)


class _worker_errors:
    """Our own errors raised in a Python worker come back wrapped in Spark's exception (with a
    JVM stack trace); unwrap them into the one-line error they were."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or isinstance(exc, StanceError):
            return False
        import re

        found = re.findall(r"comment_stance\.errors\.(\w+): (.+)", str(exc))
        if not found:
            return False
        from . import errors

        name, text = found[-1]
        message, hint = text, None
        if text.endswith(")") and " (" in text:  # StanceError's str(): "message (hint)"
            message, _, hint = text[:-1].rpartition(" (")
        raise getattr(errors, name, StanceError)(message, hint) from None


# -- files -----------------------------------------------------------------------------------------
def expand_inputs(inputs: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """Files named by ``inputs`` (files, folders searched recursively, glob patterns) as
    ``(path, name)``; ``name`` is the path relative to the folder argument (the file name for a
    file, the matched path for a glob), used in fallback ids. Sorted, without duplicates."""
    from .formats import EXTENSIONS

    found: dict[Path, str] = {}
    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file()
                           and not any(part.startswith(_SKIP) for part in p.relative_to(path).parts)
                           and p.suffix.lower() in EXTENSIONS)
            if not files:
                raise DataError(f"{path}: no input files in this folder", "point to files of a format 'stance predict' reads")
            for p in files:
                found.setdefault(p.resolve(), p.relative_to(path).as_posix())
        elif path.is_file():
            found.setdefault(path.resolve(), path.name)
        elif globbing.has_magic(text):
            matches = sorted(m for m in globbing.glob(text, recursive=True) if Path(m).is_file())
            if not matches:
                raise DataError(f"{text}: the pattern matches no files", "check the pattern (quote it for the shell)")
            for m in matches:
                found.setdefault(Path(m).resolve(), Path(m).as_posix())
        else:
            raise DataError(f"{path}: no such file or folder", "check the path")
    names = list(found.values())
    if len(set(names)) != len(names):
        raise DataError("two input files have the same name, so their fallback ids would clash",
                        "pass one folder that holds them all")
    return sorted(((p, n) for p, n in found.items()), key=lambda item: item[1])


def _partition_of(name: str) -> tuple[tuple[str, str], ...]:
    """``key=value`` folders in a relative path (Hive-style partitioning)."""
    parts = []
    for folder in Path(name).parts[:-1]:
        key, sep, value = folder.partition("=")
        if sep and key:
            parts.append((key, value))
    return tuple(parts)


def plan_units(files: Sequence[tuple[Path, str]], *, format: str | None, columns: "Columns",
               keep: Sequence[str] = (), rows_per_task: int = ROWS_PER_TASK) -> list:
    """One work unit per file, or per run of whole row groups for a Parquet file without parent
    ids; also decides per file whether it has an id column (see :func:`batches.score_unit`)."""
    from .batches import Unit
    from .formats import detect_format

    units = []
    for path, name in files:
        fmt = detect_format(path, format)
        partition = _partition_of(name)
        has_id, parents, row_groups, header = _inspect(path, fmt, columns)
        if header is not None:  # a file-wide problem is reported here, before any task starts
            from .readers import _check_header, _table_sources

            _check_header(path, header, _table_sources(columns), [k for k in keep if k not in dict(partition)])
        if fmt == "parquet" and not parents and len(row_groups) > 1:
            start, group, rows = 1, [], 0
            for index, count in enumerate(row_groups):
                group.append(index)
                rows += count
                if rows >= rows_per_task:
                    units.append(Unit(str(path), fmt, name, tuple(group), start, has_id, partition))
                    start, group, rows = start + rows, [], 0
            if group:
                units.append(Unit(str(path), fmt, name, tuple(group), start, has_id, partition))
        else:
            units.append(Unit(str(path), fmt, name, None, 1, has_id, partition))
    return units


def _inspect(path: Path, fmt: str, columns: "Columns") -> tuple[bool, bool, list[int], list[str] | None]:
    """(has an id column, has a parent-id column, rows per row group, header) of a file."""
    import csv
    import json

    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            source = pq.ParquetFile(path)
        except Exception as exc:
            raise DataError(f"{path}: cannot read Parquet ({exc})", "check that the file is complete") from None
        names = set(source.schema_arrow.names)
        groups = [source.metadata.row_group(i).num_rows for i in range(source.metadata.num_row_groups)]
        return columns.id in names, columns.parent_id in names, groups, list(source.schema_arrow.names)
    if fmt in ("csv", "tsv"):
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
            try:
                header = [h.strip() for h in next(csv.reader(handle, delimiter="," if fmt == "csv" else "\t"), [])]
            except csv.Error:
                header = None  # the reader names the problem
        names = set(header or ())
        return columns.id in names, columns.parent_id in names, [], header
    if fmt == "jsonl":
        with open(path, "rb") as handle:
            for line in handle:
                if line.strip():
                    try:
                        record = json.loads(line.lstrip(b"\xef\xbb\xbf"))
                    except ValueError:
                        record = {}
                    record = record if isinstance(record, dict) else {}
                    return columns.id in record, True, [], None
        return True, True, [], None
    return True, True, [], None  # platform exports carry their own ids


def predict_files(
    inputs: Sequence[str | Path],
    model_dir: str | Path,
    out: str | Path,
    *,
    format: str | None = None,
    out_format: str = "parquet",
    columns: "Columns | None" = None,
    keep: Sequence[str] = (),
    target: str | None = None,
    review_below: float | None = None,
    chunk_size: int = 10_000,
    max_chars: int | None = None,
    encoding: str | None = None,
    overwrite: bool = False,
    master: str = "local[*]",
    conf: dict[str, str] | None = None,
    spark: "SparkSession | None" = None,
    distribute: bool = True,
    rows_per_task: int = ROWS_PER_TASK,
    runtime: dict[str, Any] | None = None,
    _on_batch: Callable | None = None,
) -> dict[str, Any]:
    """Score files with Spark into the folder ``out`` (one part file per task), as
    ``stance predict`` would score each file: every row once with its id, error rows kept.

    The job writes ``OUT.partial`` and renames it to ``OUT`` only after Spark committed every task
    (``_SUCCESS``); a failed job leaves no ``OUT``, and the next run starts ``OUT.partial`` afresh
    and gives the same result. An existing ``OUT`` is kept unless ``overwrite``. Input files and
    ``out`` must be on storage every worker sees (a local path for ``local[*]``).
    """
    from .batches import UnitSpec, score_unit, worker_model
    from .data import Columns
    from .writers import neutralize

    _pyspark()
    if out_format not in OUTPUT_FORMATS:
        raise OutputError(f"unknown output format '{out_format}'", f"use one of: {', '.join(OUTPUT_FORMATS)}")
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    if out.exists() and not overwrite:
        raise OutputError(f"{out}: already exists", "choose another --out or pass --overwrite")
    columns = columns or Columns()
    keep = list(dict.fromkeys(keep))
    files = expand_inputs(inputs)
    if any(out.resolve() == p or out.resolve() in p.parents for p, _ in files):
        raise OutputError(f"{out}: is (or holds) an input file", "write the scores somewhere else")
    units = plan_units(files, format=format, columns=columns, keep=keep, rows_per_task=rows_per_task)
    started = time.perf_counter()
    spark = spark or spark_session(master, conf)
    shipment = _ModelShipment(spark, model_dir, distribute=distribute)
    schema, names = _output_schema(shipment.labels, keep, review_below, gated=shipment.gated)
    spec = UnitSpec(columns=asdict(columns), keep=tuple(keep), target=target, review_below=review_below,
                    chunk_size=chunk_size, max_chars=max_chars, text_kept=True, encoding=encoding)
    settings = {"threads": shipment.threads, **(runtime or {})}
    csv_out = out_format == "csv"

    def run(batches):
        model = worker_model(shipment.locate(), shipment.manifest, **settings)
        for batch in batches:
            for index in batch["id"].tolist():
                for scored in score_unit(model, units[int(index)], spec, on_batch=_on_batch):
                    scored = scored[names]
                    if csv_out:
                        for name in scored.columns:
                            if scored[name].dtype == object:
                                scored[name] = [neutralize(v) for v in scored[name].tolist()]
                    yield scored

    # one partition per unit: part-00007 holds unit 7, in file order; a retried task re-reads
    # its unit from the start and Spark keeps only one attempt's output
    scored = spark.range(0, len(units), 1, numPartitions=max(len(units), 1)).mapInPandas(run, schema)
    if partial.exists():
        shutil.rmtree(partial)  # left by a failed run: start afresh
    writer = scored.write.mode("errorifexists").format(OUTPUT_FORMATS[out_format])
    if out_format == "jsonl":
        writer = writer.option("ignoreNullFields", "false")
    if csv_out:
        writer = writer.option("header", "true").option("escape", '"')
    try:
        with _worker_errors():
            writer.save(str(partial))
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # what a failed job wrote is never a result
        raise
    if not (partial / "_SUCCESS").exists():
        raise OutputError(f"{partial}: Spark finished without _SUCCESS", "rerun the job; the output is incomplete")
    summary = _summarize(spark, partial, out_format, schema, shipment.labels, review_below)
    if out.exists():  # overwrite: the old output goes only once the new one is complete
        old = out.with_name(out.name + ".old")
        if old.exists():
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        os.replace(out, old)
        os.replace(partial, out)
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    else:
        os.replace(partial, out)
    elapsed = time.perf_counter() - started
    return {"inputs": len(files), "tasks": len(units), "output": str(out), "output_format": out_format,
            **summary, "time_s": round(elapsed, 3), "rows_per_s": round(summary["rows"] / elapsed, 1) if elapsed else 0.0,
            "master": spark.sparkContext.master}


def _summarize(spark, folder: Path, out_format: str, schema, labels: Sequence[str],
               review_below: float | None) -> dict[str, Any]:
    from pyspark.sql import functions as F

    reader = spark.read.schema(schema).format(OUTPUT_FORMATS[out_format])
    if out_format == "csv":
        reader = reader.option("header", "true").option("escape", '"')
    frame = reader.load(str(folder))
    aggregates = [F.count(F.lit(1)).alias("rows"), F.count("error").alias("errors")]
    if review_below is not None:
        aggregates.append(F.sum(F.col("needs_review").cast("int")).alias("needs_review"))
    totals = frame.agg(*aggregates).first().asDict()
    counts = {str(r["label"]): int(r["count"]) for r in frame.groupBy("label").count().collect() if r["label"] is not None}
    first = [r["error"] for r in frame.where(F.col("error").isNotNull()).select("error").limit(5).collect()]
    return {"rows": int(totals["rows"]), "scored": int(totals["rows"] - totals["errors"]),
            "errors": int(totals["errors"]),
            "needs_review": int(totals.get("needs_review") or 0) if review_below is not None else None,
            "label_counts": {label: counts.get(label, 0) for label in labels}, "first_errors": first}


# -- evaluation ------------------------------------------------------------------------------------
def evaluate_files(
    inputs: Sequence[str | Path],
    model_dir: str | Path,
    *,
    format: str | None = None,
    columns: "Columns | None" = None,
    polar: Sequence[str] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    master: str = "local[*]",
    conf: dict[str, str] | None = None,
    spark: "SparkSession | None" = None,
    distribute: bool = True,
) -> dict[str, Any]:
    """The metrics of ``stance evaluate`` on labelled files, from confusion counts that Spark
    adds up per (target, true label, predicted label). Point metrics equal the single-machine
    ones; the macro-F1 interval is a multinomial bootstrap over the counts
    (``macro_f1_ci_method``). A row that cannot be scored or has a label the model does not know
    is an error naming the row, as in ``stance evaluate``."""
    import numpy as np
    from pyspark.sql import functions as F

    from .batches import UnitSpec, score_unit, worker_model
    from .calibration import ECE_BINS, REVIEW_THRESHOLDS, confidence_summary
    from .data import Columns
    from .metrics import score_counts
    from .scoring import proba_column

    _pyspark()
    columns = columns or Columns()
    files = expand_inputs(inputs)
    units = plan_units(files, format=format, columns=columns, keep=[columns.label])
    spark = spark or spark_session(master, conf)
    shipment = _ModelShipment(spark, model_dir, distribute=distribute)
    keep = [columns.label, "target"]
    schema, names = _output_schema(shipment.labels, keep, None, gated=shipment.gated)
    gold = names[1]  # the label column as output_columns names it (input_label for "label")
    spec = UnitSpec(columns=asdict(columns), keep=tuple(keep), chunk_size=10_000, text_kept=True)
    settings = {"threads": shipment.threads}

    def run(batches):
        model = worker_model(shipment.locate(), shipment.manifest, **settings)
        for batch in batches:
            for index in batch["id"].tolist():
                for scored in score_unit(model, units[int(index)], spec):
                    yield scored[names]

    scored = spark.range(0, len(units), 1, numPartitions=max(len(units), 1)).mapInPandas(run, schema)
    known = list(shipment.labels)
    problem = (F.col("error").isNotNull() | F.col(gold).isNull() | ~F.col(gold).isin(known))
    # the cells of calibration.confidence_cells, computed per row as it does: ECE bin, review band, Brier
    confidence = F.col("confidence")
    bin_ = F.least(F.greatest(F.ceil(confidence * ECE_BINS).cast("int") - 1, F.lit(0)), F.lit(ECE_BINS - 1))
    band = sum((F.when(confidence >= t, 1).otherwise(0) for t in REVIEW_THRESHOLDS), F.lit(0))
    brier = sum(((F.col(proba_column(label)) - F.when(F.col(gold) == label, 1.0).otherwise(0.0)) ** 2
                 for label in shipment.labels), F.lit(0.0))
    with _worker_errors():
        counts = (scored.withColumn("bad", problem)
                  .groupBy("bad", F.coalesce(F.col("target"), F.lit("")).alias("t"), F.col(gold).alias("gold"),
                           F.col("label").alias("pred"), bin_.alias("bin"), band.alias("band"))
                  .agg(F.count(F.lit(1)).alias("count"), F.sum(confidence).alias("confidence_sum"),
                       F.sum(brier).alias("brier_sum"))
                  .collect())
    bad = [r for r in counts if r["bad"]]
    if bad:
        first = (scored.where(problem).select("id", gold, "error").limit(1).collect())[0]
        if first["error"] is not None:
            raise DataError(f"{first['error']} (id {first['id']})", "fix or remove the rows that cannot be scored")
        raise DataError(f"id {first['id']}: label '{first[gold]}' is unknown to the model (it knows {sorted(known)})",
                        "evaluate on data with the model's labels, or map the label names")
    index = {label: i for i, label in enumerate(known)}
    k = len(known)
    matrix = np.zeros((k, k), dtype=np.int64)
    per_target: dict[str, Any] = {}
    for r in counts:
        i, j = index[r["gold"]], index[r["pred"]]
        matrix[i, j] += r["count"]
        name = r["t"] or "(none)"
        per_target.setdefault(name, np.zeros((k, k), dtype=np.int64))[i, j] += r["count"]
    result = score_counts(matrix, known, polar=polar, per_target=per_target, n_resamples=n_resamples, seed=seed)
    # confidence_summary adds up cells however they are split: one per Spark group will do
    result["confidence"] = confidence_summary([
        {"bin": r["bin"], "band": r["band"], "correct": r["gold"] == r["pred"], "count": r["count"],
         "confidence_sum": r["confidence_sum"], "brier_sum": r["brier_sum"]} for r in counts])
    result["engine"] = "spark"
    return result
