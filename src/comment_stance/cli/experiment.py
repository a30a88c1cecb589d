from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import StanceError
from ._util import JSON_OUT, QUIET, cli_errors, make_console, print_json

app = typer.Typer(help="Run reproducible experiments from config files (see experiments/README.md).",
                  no_args_is_help=True)

OVERRIDES = {"allow_extra_args": True, "ignore_unknown_options": True}
CONFIG = typer.Argument(..., help="Experiment config (.toml), e.g. experiments/baseline.toml.")


def parse_overrides(args: list[str]) -> dict[str, str]:
    """``["--models.svm.C", "0.5", "--experiment.seeds=[1,2]"]`` -> ``{"models.svm.C": "0.5", ...}``."""
    overrides: dict[str, str] = {}
    items = list(args)
    while items:
        item = items.pop(0)
        key, sep, value = item[2:].partition("=") if item.startswith("--") else ("", "", "")
        if not key or "." not in key:
            raise StanceError(f"unexpected argument '{item}'",
                              "config values are changed with dotted options such as --models.tfidf-svm.C 0.5")
        if not sep:
            if not items or items[0].startswith("--"):
                raise StanceError(f"--{key} has no value", f"write --{key} VALUE or --{key}=VALUE")
            value = items.pop(0)
        overrides[key] = value
    return overrides


@app.command("run", context_settings=OVERRIDES)
@cli_errors
def run_cli(
    ctx: typer.Context,
    config: Path = CONFIG,
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="Run folder; default: <runs_dir>/<name>-<timestamp> (experiments/runs/...)."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Replace an existing run folder (only one this command wrote)."),
    resume: bool = typer.Option(False, "--resume",
                                help="Continue an interrupted run to --out: take the folds it finished "
                                     "(kept in <out>.checkpoints) instead of training them again; with "
                                     "nothing to resume, start."),
    json_out: bool = JSON_OUT,
    quiet: bool = QUIET,
) -> None:
    """Train and evaluate every model the config lists, write a run folder and print the leaderboard.

    Change any config value with a dotted option, e.g.
    stance experiment run experiments/baseline.toml --models.transformer.epochs 1 --experiment.seeds 0,1

    Every finished fold is kept beside the run folder until the run is complete; after an
    interruption, the same command with --resume (and the same --out) continues from them.
    """
    from ..experiments import load_config, run_experiment
    from ..report import leaderboard, markdown

    overrides = parse_overrides(ctx.args)
    resolved = load_config(config, overrides)  # a bad config fails here, before anything is trained
    console = make_console(stderr=True, highlight=False)
    show = not (quiet or json_out)

    def on_event(event: dict[str, Any]) -> None:
        if event["kind"] == "interrupted":  # shown even with --quiet: it says how not to lose the work
            again = " ".join(shlex.quote(a) for a in ["stance", "experiment", "run", str(config), *ctx.args,
                                                      "--out", event["folder"],
                                                      *(["--overwrite"] if overwrite else []), "--resume"])
            typer.echo(f"stopped: {event['folds']} finished fold(s) kept in {event['checkpoints']}; "
                       f"continue with: {again}", err=True)
            return
        if not show:
            return
        if event["kind"] == "plan":
            console.print(f"[bold]{resolved['experiment']['name']}[/bold]: {event['jobs']} training job(s) "
                          f"-> {event['folder']}")
            if event.get("checkpoints"):
                console.print(f"resuming: {event['checkpoints']} finished fold(s) in {event['folder']}.checkpoints")
        elif event["kind"] == "job":
            width = len(str(event["jobs"]))
            console.print(f"[{event['number']:>{width}}/{event['jobs']}] {event['evaluation']} · {event['model']} · "
                          f"seed {event['seed']}  macro-F1 {event['macro_f1']:.3f}  (train {event['train_s']:.1f} s)")

    run = run_experiment(config, overrides=overrides, out=out, overwrite=overwrite, progress=show, on_event=on_event,
                         resume=resume)
    if json_out:
        print_json(leaderboard(run))
    elif not quiet:
        typer.echo(markdown(leaderboard(run), details=False))
        typer.echo(f"Run folder: {run.folder} (full report: {run.folder / 'report.html'}, {run.folder / 'report.md'})")


@app.command("show", context_settings=OVERRIDES)
@cli_errors
def show_cli(ctx: typer.Context, config: Path = CONFIG, json_out: bool = JSON_OUT) -> None:
    """Print the resolved config (file, overrides and defaults) and the jobs it would run; train nothing."""
    from ..experiments import dump_toml, evaluation_seeds, load_config, plan

    resolved = load_config(config, parse_overrides(ctx.args))
    jobs = plan(resolved)
    if json_out:
        print_json({"config": resolved, "jobs": [vars(job) for job in jobs]})
        return
    typer.echo(dump_toml(resolved).rstrip())
    typer.echo(f"\n# {len(jobs)} training job(s), each on every fold of its evaluation:")
    for name, evaluation in resolved["evaluations"].items():
        seeds = ", ".join(map(str, evaluation_seeds(resolved, name)))
        typer.echo(f"#   {name} ({evaluation['protocol']}): {', '.join(evaluation['models'])} × seed(s) {seeds}")
