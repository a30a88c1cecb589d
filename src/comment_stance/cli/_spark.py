"""The ``--engine spark`` options of ``stance predict`` and ``stance evaluate``, and the calls
into :mod:`comment_stance.spark` (imported only when the engine is chosen)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import DataError

ENGINE = typer.Option("local", "--engine", help="local (this process) or spark (Apache Spark; needs the "
                                                "'spark' extra). See docs/spark.md.")
MASTER = typer.Option("local[*]", "--master", help="Spark master URL (--engine spark), e.g. local[4] or yarn.")
SPARK_CONF = typer.Option(None, "--spark-conf", help="Spark option KEY=VALUE (--engine spark; repeatable), "
                                                     "e.g. spark.executor.memory=4g.")


def check_engine(engine: str) -> bool:
    """True for the Spark engine; an unknown engine is an error."""
    if engine not in ("local", "spark"):
        raise DataError(f"unknown engine '{engine}'", "use --engine local or --engine spark")
    return engine == "spark"


def predict(inputs: list[str], *, model: Path, out: Optional[Path], text: Optional[str], resume: bool,
            master: str, spark_conf: Optional[list[str]], json_out: bool, quiet: bool, **options: Any) -> None:
    from ..spark import parse_conf, predict_files

    if text is not None or not inputs or "-" in inputs:
        raise DataError("--engine spark scores files, not --text or stdin", "give INPUT files, folders or globs")
    if out is None:
        raise DataError("--engine spark needs --out (a folder)", "e.g. --out scores.parquet")
    if resume:
        raise DataError("--engine spark has no --resume", "rerun the same command: a failed job leaves no output")
    suffix = out.suffix.lower().lstrip(".")
    summary = predict_files(inputs, model, out, out_format=suffix if suffix in ("jsonl", "csv") else "parquet",
                            master=master, conf=parse_conf(spark_conf or []), **options)
    if json_out:
        from ._util import print_json

        print_json(summary)
    elif not quiet:
        typer.echo(f"{summary['inputs']} file(s), {summary['tasks']} task(s) on {summary['master']} -> {summary['output']} "
                   f"({summary['output_format']}): {summary['rows']:,} rows in {summary['time_s']:.1f} s, "
                   f"{summary['rows_per_s']:,.0f} rows/s")
        counts = "  ".join(f"{label} {count:,}" for label, count in summary["label_counts"].items())
        review = f"  needs_review {summary['needs_review']:,}" if summary["needs_review"] is not None else ""
        typer.echo(f"  {counts}{review}  errors {summary['errors']:,}")
        for message in summary["first_errors"]:
            typer.echo(f"  error: {message}")


def evaluate(model: Path, data: Optional[Path], *, split: str, master: str, spark_conf: Optional[list[str]],
             **options: Any) -> dict[str, Any]:
    from ..spark import evaluate_files, parse_conf

    if data is None:
        raise DataError("--engine spark needs --data", "give labelled files, a folder of them, or a glob")
    inputs = [str(data)]
    if data.is_dir():  # a dataset folder: its split files; any other folder: all of its files
        split_files = sorted(str(p) for p in data.glob(f"{split}.*") if p.is_file())
        inputs = split_files or inputs
    return evaluate_files(inputs, model, master=master, conf=parse_conf(spark_conf or []), **options)
