from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._util import JSON_OUT, cli_errors, make_console, print_json

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
    from rich.table import Table

    table = Table(title=f"{stats['source']}", title_justify="left")
    labels = stats["labels"]
    for column in ("split", "rows", *labels, "targets", "replies", "median words"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split, row in stats["splits"].items():
        table.add_row(split, str(row["rows"]), *[f"{row['label_counts'].get(l, 0)}" for l in labels],
                      str(row["targets"]), f"{row['reply_share']:.0%}", f"{row['median_words']:.0f}")
    make_console().print(table)


@app.command("check")
@cli_errors
def check_cli(
    path: Optional[Path] = typer.Argument(None, help="Dataset folder or file; default: the shipped corpus."),
    max_near_duplicates: float = typer.Option(0.01, "--max-near-duplicates", help="Highest near-duplicate rate allowed."),
    jaccard: float = typer.Option(0.8, "--jaccard", help="Character 5-gram Jaccard that makes two comments near duplicates."),
    min_label_share: float = typer.Option(0.20, "--min-label-share", help="Lowest share of the data any label may have."),
    min_per_article: int = typer.Option(150, "--min-per-article", help="Fewest comments an article may have."),
    min_reply_share: float = typer.Option(0.30, "--min-reply-share", help="Lowest share of replies (when parent_id exists)."),
    context: Optional[Path] = typer.Option(
        None, "--context", help="Stance dataset that off-topic data goes with: replies may answer its comments, "
                                "and its comments count for near duplicates (e.g. data/processed/random)."),
    json_out: bool = JSON_OUT,
) -> None:
    """Check a dataset's quality: duplicates, label balance, lengths, threads, split leaks.

    Exits with code 1 when a hard rule fails; warnings alone exit 0.
    """
    from ..corpus import CheckRules, check_corpus

    result = check_corpus(path, CheckRules(max_near_duplicates, jaccard, min_label_share, min_per_article, min_reply_share),
                          context=context)
    if json_out:
        print_json({"ok": result.ok, "failures": result.failures, "warnings": result.warnings, "stats": result.stats})
    else:
        s = result.stats
        typer.echo(f"{s['source']}: {s['rows']} comments")
        typer.echo(f"  labels        {', '.join(f'{k} {v:.1%}' for k, v in s['label_share'].items())}")
        typer.echo(f"  duplicates    exact {s['exact_duplicate_rate']:.2%}, near {s['near_duplicate_rate']:.2%}"
                   + (f", {s['near_duplicates_of_context']} of --context" if "near_duplicates_of_context" in s else ""))
        if s.get("off_topic_data"):
            typer.echo("  off-topic data: label share, comments per article and reply share are not checked")
        lw = s["length_words"]
        typer.echo(f"  words         min {lw['min']}, p10 {lw['p10']}, median {lw['median']}, p90 {lw['p90']}, max {lw['max']}")
        if "reply_share" in s:
            typer.echo(f"  replies       {s['reply_share']:.1%}" + (f", {s['authors']} authors" if "authors" in s else ""))
        if "per_article" in s:
            typer.echo(f"  articles      {len(s['per_article'])}, "
                       f"{min(sum(r.values()) for r in s['per_article'].values())}–"
                       f"{max(sum(r.values()) for r in s['per_article'].values())} comments each")
        for warning in result.warnings:
            typer.echo(f"  warning: {warning}")
        for failure in result.failures:
            typer.echo(f"  FAIL: {failure}")
        typer.echo("ok" if result.ok else f"{len(result.failures)} check(s) failed")
    if not result.ok:
        raise typer.Exit(1)
