"""Shared pieces of the command-line interface: error display, option parsing, tables."""

from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable

import typer

from ..errors import StanceError
from ..values import parse_value


def cli_errors(func: Callable) -> Callable:
    """Turn known errors into one clean line plus a hint on stderr, and exit code 1.

    Unknown errors keep their traceback: they are bugs to report.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except StanceError as exc:
            hint = f" Hint: {exc.hint}." if exc.hint else ""
            typer.echo(f"error: {exc.message}.{hint}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``["C=0.5", "word_ngrams=1,3"]`` -> ``{"C": 0.5, "word_ngrams": [1, 3]}``."""
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise StanceError(f"--param '{item}' is not KEY=VALUE", "for example --param C=0.5")
        params[key.strip()] = parse_value(value.strip())
    return params


def parse_polar(text: str | None) -> list[str] | None:
    if not text:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) != 2:
        raise StanceError(f"--polar '{text}' does not name two labels", "for example --polar FAVOR,AGAINST")
    return parts


#: line width for output that is not going to a terminal: wide enough that no line is ever wrapped
PIPE_WIDTH = 10_000


def make_console(stderr: bool = False, **options: Any):
    """A rich console for tables and summaries.

    On a terminal it wraps to the terminal's width. Into a pipe, a file or a test runner it never
    wraps a line, whatever ``COLUMNS`` says, so the output does not depend on the terminal or on the
    length of a path printed in it, and ``grep`` finds every sentence whole.
    """
    from rich.console import Console

    console = Console(stderr=stderr, **options)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, soft_wrap=True, width=PIPE_WIDTH, **options)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def metrics_tables(metrics: dict[str, Any], title: str = "") -> None:
    """Print a summary line and a per-label precision/recall/F1 table for one evaluation."""
    from rich.table import Table

    console = make_console()
    ci = metrics.get("macro_f1_ci")
    ci_text = f"  (95% CI {ci[0]:.3f}–{ci[1]:.3f})" if ci else ""
    extra = f"  F_avg {metrics['f_avg']:.3f} ({'/'.join(metrics['polar'])})" if "f_avg" in metrics else ""
    console.print(f"[bold]{title}[/bold]  n={metrics['n']}  accuracy {metrics['accuracy']:.3f}  "
                  f"macro-F1 {metrics['macro_f1']:.3f}{ci_text}{extra}", highlight=False)
    table = Table()
    for column in ("label", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for label, row in metrics["per_class"].items():
        table.add_row(label, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"]))
    console.print(table)
    if metrics.get("per_target") and len(metrics["per_target"]) > 1:
        sub = Table(title="per target", title_justify="left")
        for column in ("target", "n", "accuracy", "macro-F1"):
            sub.add_column(column, justify="left" if column == "target" else "right")
        for target, row in metrics["per_target"].items():
            sub.add_row(target, str(row["n"]), f"{row['accuracy']:.3f}", f"{row['macro_f1']:.3f}")
        console.print(sub)
    confidence = metrics.get("confidence")
    if confidence and confidence["n"]:
        console.print(f"confidence: ECE {confidence['ece']:.3f}, Brier {confidence['brier']:.3f} (mean confidence "
                      f"{confidence['mean_confidence']:.3f} against accuracy {confidence['accuracy']:.3f})",
                      highlight=False)
        review = Table(title="what --review-below would send to a moderator", title_justify="left")
        for column in ("review below", "comments flagged", "errors among them", "accuracy of the rest"):
            review.add_column(column, justify="right")
        for row in confidence["review"]:
            rest = row["accuracy_unflagged"]
            review.add_row(f"{row['below']:.2f}", f"{row['flagged']} ({row['flagged_share']:.0%})",
                           f"{row['errors_caught']} of {confidence['errors']} ({row['errors_caught_share']:.0%})",
                           "–" if rest is None else f"{rest:.3f}")
        console.print(review)


TEXT_COL = typer.Option("text", "--text-col", help="Column holding the comment text.")
LABEL_COL = typer.Option("label", "--label-col", help="Column holding the gold label.")
TARGET_COL = typer.Option("target", "--target-col", help="Column holding the stance target (e.g. the pact).")
ID_COL = typer.Option("id", "--id-col", help="Column holding the comment id.")
JSON_OUT = typer.Option(False, "--json", help="Print one JSON object instead of tables (for scripts).")
QUIET = typer.Option(False, "--quiet", "-q", help="Print nothing but errors.")


def columns_from(text_col: str, label_col: str, target_col: str, id_col: str):
    from ..data import Columns

    return Columns(text=text_col, label=label_col, target=target_col, id=id_col)
