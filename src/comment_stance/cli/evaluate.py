from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import OutputError
from ._spark import ENGINE, MASTER, SPARK_CONF, check_engine
from ._util import (ID_COL, JSON_OUT, LABEL_COL, QUIET, TARGET_COL, TEXT_COL, cli_errors, columns_from,
                    metrics_tables, parse_polar, print_json)


@cli_errors
def evaluate_cli(
    model: Path = typer.Option(..., "--model", "-m", help="Model folder written by 'stance train'."),
    data: Optional[Path] = typer.Option(None, "--data", "-d",
                                        help="Dataset folder or one labelled file; default: the shipped corpus."),
    split: str = typer.Option("test", "--split", help="Which split of a dataset folder to score."),
    polar: Optional[str] = typer.Option(None, "--polar", help="Two polar labels for F_avg, e.g. FAVOR,AGAINST."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for metrics.json and confusion.png."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace files in --out."),
    text_col: str = TEXT_COL,
    label_col: str = LABEL_COL,
    target_col: str = TARGET_COL,
    id_col: str = ID_COL,
    json_out: bool = JSON_OUT,
    quiet: bool = QUIET,
    engine: str = ENGINE,
    master: str = MASTER,
    spark_conf: Optional[list[str]] = SPARK_CONF,
) -> None:
    """Score a trained model on labelled comments: accuracy, macro-F1 with a 95% CI, per-class table."""
    from ..evaluation import evaluate
    from ..plots import confusion_png

    if out is not None:
        targets = [out / "metrics.json", out / "confusion.png"]
        existing = [p for p in targets if p.exists()]
        if existing and not overwrite:
            raise OutputError(f"{existing[0]}: already exists", "choose another --out or pass --overwrite")
    columns = columns_from(text_col, label_col, target_col, id_col)
    if check_engine(engine):  # metrics from Spark's confusion counts; the interval is named in the output
        from . import _spark

        metrics = _spark.evaluate(model, data, split=split, master=master, spark_conf=spark_conf,
                                  polar=parse_polar(polar), columns=columns)
    else:
        metrics = evaluate(model, data, split=split, polar=parse_polar(polar), columns=columns)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
        confusion_png(metrics["confusion"]["matrix"], metrics["confusion"]["labels"], out / "confusion.png",
                      title=f"{model.name} on {data or 'shipped corpus'} ({split})")
    if json_out:
        print_json(metrics)
    elif not quiet:
        metrics_tables(metrics, title=f"{model.name} on {data or 'shipped corpus'}")
        if metrics.get("macro_f1_ci_method"):
            typer.echo(f"macro-F1 interval: {metrics['macro_f1_ci_method']}")
