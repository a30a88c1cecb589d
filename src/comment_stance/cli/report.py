from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import OutputError, StanceError
from ._util import JSON_OUT, QUIET, cli_errors, print_json


@cli_errors
def report_cli(
    runs: list[Path] = typer.Argument(..., help="A run folder; give two to compare them (A then B)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="Write report.md, report.html, metrics.json (and few-shot learning curves) here (e.g. "
                                            "experiments/results/baseline); default: the run folder's own report."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing files in --out."),
    json_out: bool = JSON_OUT,
    quiet: bool = QUIET,
) -> None:
    """Leaderboard of a run (macro-F1 with CI, significance, speed), or the comparison of two runs.

    Per model: macro-F1 with its bootstrap CI, F_avg, per-class F1, accuracy, training time,
    inference rows/s, and a paired significance test against the best baseline.
    """
    from ..report import compare_runs, comparison_markdown, export_results, leaderboard, markdown, write_report

    if len(runs) > 2:
        raise StanceError(f"{len(runs)} run folders given", "give one run folder, or two to compare")
    if len(runs) == 2:
        comparison = compare_runs(runs[0], runs[1])
        text = comparison_markdown(comparison)
        if out is not None:
            target = out / "comparison.md"
            if target.exists() and not overwrite:
                raise OutputError(f"{target}: already exists", "choose another --out or pass --overwrite")
            out.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        if json_out:
            print_json(comparison)
        elif not quiet:
            typer.echo(text)
        return
    from ..experiments import load_run

    run = load_run(runs[0])
    board = leaderboard(run)
    if out is None:
        write_report(run, board=board)
    else:
        export_results(run, out, overwrite=overwrite)
    if json_out:
        print_json(board)
    elif not quiet:
        typer.echo(markdown(board))
