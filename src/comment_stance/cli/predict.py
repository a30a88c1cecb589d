from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import DataError, OutputError
from ._spark import ENGINE, MASTER, SPARK_CONF, check_engine
from ._util import ID_COL, JSON_OUT, QUIET, TARGET_COL, TEXT_COL, cli_errors, print_json

# kept in step with comment_stance.readers.INPUT_FORMATS, MAX_CHARS and scoring.DEFAULT_CHUNK_SIZE
# (not imported here so that 'stance --help' stays fast)
_FORMATS = "csv, tsv, jsonl, parquet, disqus, wordpress, reddit, article"


@cli_errors
def predict_cli(
    inputs: Optional[list[str]] = typer.Argument(
        None, help="File to score (CSV/TSV, JSONL, Parquet, Disqus XML, WordPress WXR, Reddit NDJSON, "
                   "article page .txt), or - for one comment on stdin; with --engine spark, files, "
                   "folders and glob patterns."),
    model: Path = typer.Option(..., "--model", "-m", help="Model folder written by 'stance train'."),
    text: Optional[str] = typer.Option(None, "--text", "-t", help="Score this one comment."),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Write scored rows here (.csv, .tsv, .jsonl or .parquet); without it, rows go "
                                  "to stdout as CSV (a JSON array with --json)."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help=f"Force the input format: {_FORMATS}."),
    keep: Optional[list[str]] = typer.Option(
        None, "--keep", "-k", help="Input column to copy into the output (repeatable or comma-separated), "
                                   "e.g. text,author."),
    target: Optional[str] = typer.Option(None, "--target", help="Target of every comment (default: the "
                                                                 "target column, or the thread/article title)."),
    review_below: Optional[float] = typer.Option(
        None, "--review-below", help="Add needs_review, true when the confidence is below this (e.g. 0.6)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted job into the same --out."),
    chunk_size: int = typer.Option(10_000, "--chunk-size", help="Rows read, scored and written at a time."),
    max_chars: int = typer.Option(100_000, "--max-chars", help="Longest field accepted; longer rows get an error."),
    encoding: Optional[str] = typer.Option(None, "--encoding", help="Text encoding of the input, e.g. cp1252 "
                                                                    "(default: UTF-8)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads (transformer family; default: 1 for "
                                                                   "one comment, torch's default for a file)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Comments per forward pass (transformer family)."),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="Quantize for CPU inference, e.g. int8 "
                                                                    "(transformer family)."),
    text_col: str = TEXT_COL,
    target_col: str = TARGET_COL,
    id_col: str = ID_COL,
    json_out: bool = JSON_OUT,
    quiet: bool = QUIET,
    engine: str = ENGINE,
    master: str = MASTER,
    spark_conf: Optional[list[str]] = SPARK_CONF,
) -> None:
    """Score comments: one given with --text or on stdin, or a whole file or platform export.

    A file is streamed in chunks; every input row appears once in the output, in input order,
    with label, confidence, one p_<label> column per label and, for rows that cannot be scored,
    an error. The output is written to OUT.partial and moved into place at the end; --resume
    continues an interrupted job, or one stopped by a file that broke part of the way through.
    With --engine spark, OUT is a folder of part files.
    """
    if check_engine(engine):
        from ..data import Columns
        from . import _spark

        return _spark.predict(inputs or [], model=model, out=out, text=text, resume=resume, master=master,
                              spark_conf=spark_conf, json_out=json_out, quiet=quiet, format=format,
                              keep=_split(keep), target=target, review_below=review_below, overwrite=overwrite,
                              chunk_size=chunk_size, max_chars=max_chars, encoding=encoding,
                              runtime={"quantize": quantize, "inference_batch_size": batch_size},
                              columns=Columns(text=text_col, target=target_col, id=id_col))
    if inputs is not None and len(inputs) > 1:
        raise DataError(f"{len(inputs)} inputs given; stance predict scores one file at a time",
                        "score them one by one, or use --engine spark")
    input = inputs[0] if inputs else None
    if (text is not None) + (input is not None) != 1:
        raise DataError("give exactly one of INPUT, - or --text", "e.g. stance predict --model DIR --text 'Sign it.'")
    if resume and out is None:
        raise OutputError("--resume needs --out", "name the output file of the interrupted job")
    from ..persist import load_model

    one_comment = input == "-" or text is not None
    if one_comment and threads is None:
        # one short comment gains nothing from several threads, and on a busy machine their
        # synchronization costs far more (measured: 29 ms with 1 thread, 740 ms with 2)
        threads = 1
    estimator = load_model(model, threads=threads, quantize=quantize, inference_batch_size=batch_size)
    if one_comment:
        comment = text if text is not None else sys.stdin.read()
        _score_one(estimator, comment, target=target, review_below=review_below, max_chars=max_chars, out=out,
                   overwrite=overwrite, json_out=json_out, quiet=quiet)
        return
    _score_file(estimator, input, out, format=format, keep=_split(keep), target=target, review_below=review_below,
                overwrite=overwrite, resume=resume, chunk_size=chunk_size, max_chars=max_chars, encoding=encoding,
                text_col=text_col, target_col=target_col, id_col=id_col, json_out=json_out, quiet=quiet)


def _split(values: Optional[list[str]]) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def _score_one(estimator, comment: str, *, target, review_below, max_chars, out, overwrite, json_out, quiet) -> None:
    import pandas as pd

    from ..scoring import output_columns, predict
    from ..writers import ResumableOutput

    comment = comment.strip()
    if not comment:
        raise DataError("the comment is empty", "pass the comment text with --text or on stdin")
    if len(comment) > max_chars:
        raise DataError(f"the comment is {len(comment)} characters, over the limit of {max_chars}",
                        "pass a larger --max-chars")
    started = time.perf_counter()
    scored = predict(estimator, pd.DataFrame({"text": [comment], "target": [target]}), review_below=review_below)
    elapsed = time.perf_counter() - started
    record = {k: (v.item() if hasattr(v, "item") else v) for k, v in scored.iloc[0].items()}
    if out is not None:
        columns, types = output_columns(estimator, review_below=review_below)
        row = pd.DataFrame([{**record, "id": "1", "error": None}])
        job = ResumableOutput(out, columns=columns, types=types, overwrite=overwrite)
        job.write(row, rows=1)
        job.finish()
    if json_out:
        print_json(record)
    elif not quiet:
        probabilities = "  ".join(f"{k[2:]} {v:.3f}" for k, v in record.items() if k.startswith("p_"))
        review = f"  needs review ({record.get('review_reason')})" if record.get("needs_review") else ""
        typer.echo(f"{record['label']}  (confidence {record['confidence']:.3f}; {probabilities}){review}"
                   f"  [{elapsed * 1000:.0f} ms]")


def _score_file(estimator, input: str, out: Optional[Path], *, json_out: bool, quiet: bool, text_col: str,
                target_col: str, id_col: str, **options: Any) -> None:
    from ..data import Columns
    from ..scoring import score_file

    columns = Columns(text=text_col, target=target_col, id=id_col)
    if out is None:  # rows to stdout; the summary (if any) to stderr
        summary = score_file(estimator, input, sys.stdout, out_format="json" if json_out else "csv",
                             columns=columns, **options)
        if not (quiet or json_out):
            _print_summary(summary, err=True)
        return
    done = {"rows": 0}
    try:
        if quiet or json_out:
            summary = score_file(estimator, input, out, columns=columns, **options)
        else:
            with _progress_bar() as advance:
                def progress(rows: int, share: float | None) -> None:
                    done["rows"] = rows
                    advance(rows, share)

                summary = score_file(estimator, input, out, columns=columns, progress=progress, **options)
    except KeyboardInterrupt:
        typer.echo(f"interrupted after {done['rows']:,} rows; rerun the same command with --resume to continue",
                   err=True)
        raise typer.Exit(130) from None
    if json_out:
        print_json(summary.as_dict())
    elif not quiet:
        _print_summary(summary)


class _progress_bar:
    """A rich progress bar on stderr: share of the file read, rows, rows/s."""

    def __enter__(self):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

        self.started = time.perf_counter()
        self.progress = Progress(
            TextColumn("scoring"), BarColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[rows]:,} rows"), TextColumn("{task.fields[rate]:,.0f} rows/s"),
            TimeElapsedColumn(), console=Console(stderr=True), transient=True,
        )
        self.progress.__enter__()
        self.task = self.progress.add_task("scoring", total=100, rows=0, rate=0.0)
        self.first_rows: int | None = None
        return self.advance

    def advance(self, rows: int, share: float | None) -> None:
        if self.first_rows is None:  # on --resume, count only this run's rows in the rate
            self.first_rows = rows
            self.started = time.perf_counter()
        elapsed = time.perf_counter() - self.started
        rate = (rows - self.first_rows) / elapsed if elapsed > 0 else 0.0
        self.progress.update(self.task, completed=None if share is None else share * 100, rows=rows, rate=rate)

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)


def _print_summary(summary, err: bool = False) -> None:
    from rich.table import Table

    from ._util import make_console

    console = make_console(stderr=err)
    resumed = f", {summary.resumed_rows:,} of them from the interrupted run" if summary.resumed_rows else ""
    title = (f"{summary.input} ({summary.input_format}) -> {summary.output or 'stdout'} ({summary.output_format}): "
             f"{summary.rows:,} rows{resumed} in {summary.time_s:.1f} s, {summary.rows_per_s:,.0f} rows/s")
    console.print(title, highlight=False)
    table = Table()
    table.add_column("", justify="left")
    table.add_column("rows", justify="right")
    table.add_column("share", justify="right")
    total = summary.rows or 1
    for label, count in summary.label_counts.items():
        table.add_row(label, f"{count:,}", f"{count / total:.1%}")
    if summary.needs_review is not None:
        table.add_row("needs_review", f"{summary.needs_review:,}", f"{summary.needs_review / total:.1%}")
    table.add_row("errors", f"{summary.errors:,}", f"{summary.errors / total:.1%}")
    console.print(table)
    for message in summary.first_errors:
        console.print(f"  error: {message}", highlight=False)
    if summary.errors > len(summary.first_errors):
        console.print(f"  ... {summary.errors - len(summary.first_errors):,} more; see the 'error' column",
                      highlight=False)
    for message in summary.warnings:  # one line each, never wrapped: users grep them
        console.print(f"  warning: {message}", highlight=False, soft_wrap=True)
