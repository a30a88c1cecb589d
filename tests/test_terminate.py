"""SIGTERM (``kill PID``, a batch scheduler's time limit, a container stopping) stops ``stance`` the
way Ctrl-C does: every clean-up runs, what can be resumed is kept, the line that says how to
continue is printed, and the exit status is 143.

Each case runs the real entry point (``comment_stance.cli.main``) in a child process that sends
itself SIGTERM at a chosen moment of the job; the moment is picked by wrapping one library
method in the child (the library has no test hooks).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import comment_stance as cs
from comment_stance.cli import TERMINATED, app
from comment_stance.experiments.checkpoints import checkpoint_folder

from .conftest import FIXTURES, REPO

runner = CliRunner()

# argv: MODULE NAME N then the stance arguments, NAME being a function or CLASS.METHOD of MODULE;
# once its N-th call returns, the process sends itself SIGTERM (as `kill PID` would)
CHILD = r"""
import importlib, os, signal, sys
module, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
owner = importlib.import_module(module)
*path, method = name.split(".")
for part in path:
    owner = getattr(owner, part)
real = getattr(owner, method)
calls = []

def wrapped(*args, **kwargs):
    result = real(*args, **kwargs)
    calls.append(1)
    if len(calls) == n:
        os.kill(os.getpid(), signal.SIGTERM)
    return result

setattr(owner, method, wrapped)
from comment_stance.cli import main
sys.argv = ["stance", *sys.argv[4:]]
main()
"""


def terminated_at(target: tuple[str, str], n: int, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", CHILD, *target, str(n), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def python_child(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python with this checkout's package on the path."""
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                          capture_output=True, text=True, timeout=120)


def hidden_siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


def test_the_exit_status_is_the_shells_for_sigterm():
    assert TERMINATED == 143


def test_a_terminated_experiment_keeps_its_finished_folds_and_says_how_to_continue(tmp_path):
    out = tmp_path / "run"
    args = ["experiment", "run", str(FIXTURES / "experiment-tiny.toml"), "--out", str(out), "--quiet",
            "--experiment.seeds", "0"]
    stopped = terminated_at(("comment_stance.experiments.checkpoints", "Checkpoints.save"), 3, *args)

    assert stopped.returncode == TERMINATED, stopped.stderr[-3000:]
    line = next(line for line in stopped.stderr.splitlines() if line.startswith("stopped:"))
    assert f"3 finished fold(s) kept in {checkpoint_folder(out)}" in line
    assert not out.exists() and hidden_siblings(out) == []  # the half-built run folder was removed
    kept = sorted(checkpoint_folder(out).glob("folds/**/*.json"))
    assert len(kept) == 3

    command = shlex.split(line.split("continue with: ", 1)[1])
    assert command[-1] == "--resume"
    again = runner.invoke(app, command[1:])
    assert again.exit_code == 0, again.output
    assert json.loads((out / "run.json").read_text())["resumed"]["folds"] == 3
    assert not checkpoint_folder(out).exists()


def test_a_terminated_training_leaves_no_half_built_model_folder(tmp_path):
    out = tmp_path / "model"
    args = ["train", "--data", str(FIXTURES / "tiny"), "--model", "tfidf-logreg", "--out", str(out), "-q"]
    # stopped once the model is fitted, while its folder is being written (its config is in)
    stopped = terminated_at(("comment_stance.persist", "model_card"), 1, *args)

    assert stopped.returncode == TERMINATED, stopped.stderr[-3000:]
    assert not out.exists() and hidden_siblings(out) == []


def test_a_terminated_scoring_job_keeps_its_rows_for_resume(tmp_path):
    model = tmp_path / "model"
    cs.train(FIXTURES / "tiny", "tfidf-logreg", model)
    source = tmp_path / "in.csv"
    source.write_text("id,text,target\n" + "".join(f"c{i},Only with monitors #{i},Pact A\n" for i in range(1000)))
    reference = tmp_path / "reference.csv"
    args = ["predict", "--model", str(model), str(source), "--chunk-size", "100", "--quiet"]
    assert runner.invoke(app, [*args, "--out", str(reference)]).exit_code == 0

    out = tmp_path / "out.csv"
    stopped = terminated_at(("comment_stance.writers", "ResumableOutput.write"), 3,
                            *args, "--out", str(out))

    assert stopped.returncode == TERMINATED, stopped.stderr[-3000:]
    assert "interrupted after" in stopped.stderr and "--resume" in stopped.stderr
    assert not out.exists()  # no partial output under the final name
    resumed = runner.invoke(app, [*args, "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert out.read_bytes() == reference.read_bytes()


def test_a_second_sigterm_during_clean_up_is_not_caught():
    """The handler takes itself out on the first signal, so a stuck clean-up can still be stopped."""
    code = ("import os, signal, sys\n"
            "from comment_stance import cli\n"
            "def job():\n"
            "    try:\n"
            "        os.kill(os.getpid(), signal.SIGTERM)\n"
            "    finally:\n"
            "        os.kill(os.getpid(), signal.SIGTERM)\n"
            "cli.app = job\n"
            "cli.main()\n")
    done = python_child(code)
    assert done.returncode == -signal.SIGTERM, done.stderr[-2000:]


def test_main_in_a_worker_thread_runs_the_command_without_the_handler():
    """Python refuses signal handlers outside the main thread; the command must still run there."""
    code = ("import sys, threading\n"
            "from comment_stance import cli\n"
            "outcome = []\n"
            "def run():\n"
            "    try:\n"
            "        cli.main()\n"
            "    except SystemExit as stop:\n"
            "        outcome.append(stop.code)\n"
            "    except BaseException as error:\n"
            "        outcome.append(repr(error))\n"
            "sys.argv = ['stance', '--help']\n"
            "worker = threading.Thread(target=run)\n"
            "worker.start(); worker.join()\n"
            "print('outcome', outcome)\n")
    done = python_child(code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Usage: stance" in done.stdout
    assert done.stdout.strip().splitlines()[-1] in ("outcome [0]", "outcome [None]"), done.stdout[-500:]


def test_main_gives_a_callers_own_handler_back_when_the_command_ends():
    code = ("import signal, sys\n"
            "from comment_stance import cli\n"
            "def mine(signum, frame): pass\n"
            "signal.signal(signal.SIGTERM, mine)\n"
            "sys.argv = ['stance', '--help']\n"
            "try:\n"
            "    cli.main()\n"
            "except SystemExit:\n"
            "    pass\n"
            "print('restored', signal.getsignal(signal.SIGTERM) is mine)\n")
    done = python_child(code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "restored True", done.stdout[-500:]
