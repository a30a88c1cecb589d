from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._util import JSON_OUT, cli_errors, print_json

app = typer.Typer(help="Inspect and check comment datasets.", no_args_is_help=True)


@app.command("stats")
@cli_errors
def stats_cli(
    path: Optional[Path] = typer.Argument(None, help="Dataset folder or file; default: the shipped corpus."),
    json_out: bool = JSON_OUT,
) -> None:
    """Rows, labels, targets, lengths and reply share per split."""
    from ..corpus import dataset_stats

    stats = dataset_stats(path)
    if json_out:
        print_json(stats)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{stats['source']}", title_justify="left")
    labels = stats["labels"]
    for column in ("split", "rows", *labels, "targets", "replies", "median words"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split, row in stats["splits"].items():
        table.add_row(split, str(row["rows"]), *[f"{row['label_counts'].get(l, 0)}" for l in labels],
                      str(row["targets"]), f"{row['reply_share']:.0%}", f"{row['median_words']:.0f}")
    Console().print(table)
