"""The ``stance`` command line: a thin layer over the :mod:`comment_stance` library."""

from __future__ import annotations

import signal
import sys
import threading

import typer

from . import backbone as _backbone
from . import combine as _combine
from . import data as _data
from . import evaluate as _evaluate
from . import experiment as _experiment
from . import predict as _predict
from . import report as _report
from . import serve as _serve
from . import train as _train

app = typer.Typer(
    name="stance",
    help="Learn and score the stance of reader comments toward a target (a pact, a claim).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("train")(_train.train_cli)
app.command("combine")(_combine.combine_cli)
app.command("evaluate")(_evaluate.evaluate_cli)
app.command("predict")(_predict.predict_cli)
app.add_typer(_data.app, name="data")
app.add_typer(_experiment.app, name="experiment")
app.add_typer(_backbone.app, name="backbone")
app.command("report")(_report.report_cli)
app.command("serve")(_serve.serve_cli)


#: exit status of a command stopped by SIGTERM (128 + 15, as a shell reports it)
TERMINATED = 128 + signal.SIGTERM


def main() -> None:
    """The ``stance`` command. SIGTERM (``kill``, a scheduler, a container stopping) stops it the
    way Ctrl-C does, so that every clean-up runs: a half-built model or run folder is removed, the
    finished folds of an experiment and the rows ``stance predict`` wrote are kept for
    ``--resume``, and the line saying how to continue is printed. The exit status is then 143."""
    terminated = []

    def stop(signum, frame):
        terminated.append(signum)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM stops it at once
        raise KeyboardInterrupt

    # Python lets only the main thread set signal handlers: elsewhere (main() called from a worker
    # thread) the command runs without the handler instead of failing
    installed = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, stop) if installed else None
    try:
        app()  # click ends every command with SystemExit; Ctrl-C's and SIGTERM's with status 1 ("Aborted!")
    except SystemExit:
        if terminated:
            sys.exit(TERMINATED)
        raise
    finally:
        if installed and not terminated:  # a caller's own handler is back once the command ends
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
