from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import StanceError
from ._util import (ID_COL, JSON_OUT, LABEL_COL, QUIET, TARGET_COL, TEXT_COL, cli_errors, columns_from,
                    metrics_tables, parse_polar, print_json)


@cli_errors
def combine_cli(
    models: list[Path] = typer.Argument(..., help="Two or more model folders (e.g. one preset trained with "
                                                  "three seeds, or a TF-IDF model and a transformer)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the ensemble to."),
    weights: Optional[str] = typer.Option(None, "--weights",
                                          help="One weight per model, e.g. 2,1 (default: equal weights)."),
    data: Optional[Path] = typer.Option(None, "--data", "-d",
                                        help="Dataset folder to score the ensemble on (its dev and test files); the "
                                             "ensemble's mean is recalibrated on its dev file."),
    polar: Optional[str] = typer.Option(None, "--polar", help="Two polar labels for F_avg, e.g. FAVOR,AGAINST."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Replace an existing model folder (only one this tool wrote, "
                                        "holding nothing else)."),
    text_col: str = TEXT_COL,
    label_col: str = LABEL_COL,
    target_col: str = TARGET_COL,
    id_col: str = ID_COL,
    json_out: bool = JSON_OUT,
    quiet: bool = QUIET,
) -> None:
    """Combine trained model folders into one ensemble (the weighted mean of their probabilities), without training."""
    from ..training import combine

    parsed = None
    if weights is not None:
        try:
            parsed = [float(w) for w in weights.split(",")]
        except ValueError:
            raise StanceError(f"--weights '{weights}' is not a list of numbers", "for example --weights 2,1") from None
    result = combine(list(models), out, weights=parsed, data=data,
                     columns=columns_from(text_col, label_col, target_col, id_col), polar=parse_polar(polar),
                     overwrite=overwrite, figures=True)
    shares = result.model._normalised_weights(len(models))
    if json_out:
        print_json({"model": str(result.folder), "members": list(result.model.members),
                    "weights": [round(float(w), 6) for w in shares], "metrics": result.metrics})
    elif not quiet:
        members = ", ".join(f"{name} ({share:.2f})" for name, share in zip(result.model.members, shares))
        typer.echo(f"combined {len(models)} models: {members} -> {result.folder}")
        for split, scores in result.metrics.items():
            metrics_tables(scores, title=split)
