from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._util import (ID_COL, JSON_OUT, LABEL_COL, QUIET, TARGET_COL, TEXT_COL, cli_errors, columns_from,
                    metrics_tables, parse_params, parse_polar, print_json)


@cli_errors
def train_cli(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the model to."),
    data: Optional[Path] = typer.Option(None, "--data", "-d",
                                        help="Dataset folder (train/dev/test files) or one file; default: the shipped corpus."),
    model: str = typer.Option("tfidf-logreg", "--model", "-m",
                              help="majority, tfidf-logreg, tfidf-svm or transformer."),
    per_target: bool = typer.Option(False, "--per-target", help="Train one model per target (TF-IDF family)."),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p",
                                              help="Hyper-parameter KEY=VALUE, repeatable (e.g. C=0.5, word_ngrams=1,3)."),
    polar: Optional[str] = typer.Option(None, "--polar", help="Two polar labels for F_avg, e.g. FAVOR,AGAINST."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing model folder."),
    text_col: str = TEXT_COL,
    label_col: str = LABEL_COL,
    target_col: str = TARGET_COL,
    id_col: str = ID_COL,
    json_out: bool = JSON_OUT,
    quiet: bool = QUIET,
) -> None:
    """Train a model on the train split and save it; print its dev and test scores."""
    from ..plots import confusion_png
    from ..training import train

    result = train(
        data, model, out, params=parse_params(param), per_target=per_target,
        columns=columns_from(text_col, label_col, target_col, id_col), polar=parse_polar(polar),
        overwrite=overwrite, progress=not (quiet or json_out),
    )
    for split, scores in result.metrics.items():
        confusion_png(scores["confusion"]["matrix"], scores["confusion"]["labels"],
                      result.folder / f"confusion-{split}.png", title=f"{model} on {split}")
    if json_out:
        print_json({"model": str(result.folder), "time_s": round(result.time_s, 3), "metrics": result.metrics})
    elif not quiet:
        typer.echo(f"trained {model} in {result.time_s:.1f} s -> {result.folder}")
        for split, scores in result.metrics.items():
            metrics_tables(scores, title=split)
