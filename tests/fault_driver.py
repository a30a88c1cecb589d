"""Kill ``stance`` at chosen file-system steps and report what each kill left behind.

Used by tests/test_faults_train.py; run as a script so that it owns its process tree::

    python tests/fault_driver.py SPEC.json

SPEC: ``{"root": DIR, "kind": "model"|"run", "args": [...], "old_args": [...] | null,
"points": [[STEP, "before"|"after"], ...] | "all", "rerun": bool}``, STEP being a number, "last",
or a text the step's line contains (e.g. "report.html" for the first write of that file). ``args`` are ``stance`` arguments in which
``{out}`` stands for the destination folder (``ROOT/work/out``).

The driver imports everything once, then forks one child per fault point. The child counts every
file-system step under its root (``open`` for writing, ``mkdir``, ``rename``/``replace``,
``rmtree``, ``unlink``) and sends itself SIGKILL just before or just after step N, as a crash or
``kill -9`` would stop it; the child never runs a handler or a ``finally`` block. After each kill the driver
classifies the destination (absent / the previous folder / the new folder / broken) and, with
``rerun``, runs the same command again uninterrupted and classifies that too. One JSON line per
point goes to stdout.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import shutil
import signal
import sys
from pathlib import Path

TEXTS = ["Sign it now, it is a good deal.", "Only with independent monitors.", "Never, it is a trap."]
WRITE_MODES = set("wax+")


def arm(root: Path, kill_at: tuple[int | str, str] | None, log) -> None:
    """Patch the file-system primitives so that the process dies just ``before`` or just ``after``
    step ``kill_at[0]`` under ``root`` (after an ``open``: the file exists, nothing written yet).
    The step is a number, or a text: the first step whose line contains it."""
    count = 0
    root_text = str(root)

    def step(op: str, path) -> bool:
        nonlocal count
        text = os.fspath(path) if not isinstance(path, int) else ""
        if not str(text).startswith(root_text):
            return False
        count += 1
        line = f"{count}\t{op}\t{os.path.relpath(text, root_text)}"
        log.write(line + "\n")
        log.flush()
        if kill_at is not None and (count == kill_at[0] or (isinstance(kill_at[0], str) and kill_at[0] in line)):
            if kill_at[1] == "before":
                os.kill(os.getpid(), signal.SIGKILL)
            return True
        return False

    def wrap(module, name, op, is_write=lambda *a, **k: True):
        real = getattr(module, name)

        def patched(*args, **kwargs):
            die = bool(args) and is_write(*args, **kwargs) and step(op, args[0])
            result = real(*args, **kwargs)
            if die:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        setattr(module, name, patched)

    def writing(file, mode="r", *args, **kwargs):
        return bool(WRITE_MODES & set(kwargs.get("mode", mode)))

    real_open = builtins.open
    wrap(builtins, "open", "open-write", writing)
    if io.open is real_open:
        io.open = builtins.open
    for name in ("mkdir", "rename", "replace", "unlink", "remove", "rmdir"):
        wrap(os, name, name)
    wrap(shutil, "rmtree", "rmtree")
    from comment_stance import persist

    real_exchange = persist._exchange

    def exchange(first, second):  # an atomic swap through ctypes, invisible to the wrappers above
        die = step("exchange", second)
        result = real_exchange(first, second)
        if die:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    persist._exchange = exchange


def fingerprint(folder: Path, kind: str):
    """What must be equal between an interrupted-then-rerun and an uninterrupted run (no timings)."""
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    if kind == "model":
        from comment_stance.persist import load_model

        model = load_model(folder)
        config = _without_timings(json.loads((folder / "config.json").read_text()))
        config.pop("created_at", None)
        return {"files": files, "config": config, "metrics": json.loads((folder / "metrics.json").read_text()),
                "proba": [[round(float(x), 10) for x in row] for row in model.predict_proba(TEXTS)]}
    from comment_stance.experiments import load_run

    run = load_run(folder)
    # how the run came about (when, by which command, which folds a --resume took) is not what it holds
    info = {k: v for k, v in run.info.items()
            if k not in ("started_at", "finished_at", "duration_s", "command", "resumed")}
    predictions = {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.glob("predictions/**/*.jsonl"))}
    html, md = folder / "report.html", folder / "report.md"
    reports = {"report.html": html.is_file() and html.read_text().rstrip().endswith("</html>"),
               "report.md": md.is_file() and md.stat().st_size > 0}
    return {"files": files, "metrics": run.metrics, "info": info, "config": run.config, "predictions": predictions,
            "reports_complete": reports}


def _without_timings(value):
    """``value`` without the fields that measure time (``time_s``, ``examples_per_s``...)."""
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if not k.endswith(("time_s", "_per_s"))}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def classify(dest: Path, kind: str, old, new) -> str:
    if not dest.exists():
        return "absent"
    try:
        found = fingerprint(dest, kind)
    except Exception as exc:  # anything that does not load is broken
        return f"broken: {type(exc).__name__}: {str(exc)[:120]}"
    if found == new:
        return "new"
    if old is not None and found == old:
        return "old"
    differing = sorted(k for k in found if found.get(k) != (new or {}).get(k))
    return f"broken: loads but differs from a complete folder in {differing}"


def hidden(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.parent.glob(f".{dest.name}.*"))


def run_child(args: list[str], root: Path, kill_at: int | None) -> tuple[str, list[str]]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run the command, die at the chosen step
        os.close(read)
        log = os.fdopen(write, "w")
        code = 0
        try:
            sys.stdout = sys.stderr = open(os.devnull, "w")
            arm(root, kill_at, log)
            from comment_stance.cli import app

            app(args=args, prog_name="stance")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            code = 99
        os._exit(code)
    os.close(write)
    with os.fdopen(read) as log:
        ops = log.read().splitlines()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return f"killed({os.WTERMSIG(status)})", ops
    return f"exit({os.WEXITSTATUS(status)})", ops


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    root, kind = Path(spec["root"]), spec["kind"]
    if spec.get("single"):  # this process is the one killed: no fork (torch does not survive one well)
        arm(root, tuple(spec["single"]), sys.stderr)
        from comment_stance.cli import app

        app(args=spec["args"], prog_name="stance")
        return
    # a forked child must not inherit a busy BLAS thread pool
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = "1"
    import comment_stance.cli  # noqa: F401  (imports paid once, before forking)
    from comment_stance.models.baselines import _skops_io

    _skops_io()
    import matplotlib.figure  # noqa: F401

    def fill(args, out):
        return [a.replace("{out}", str(out)) for a in args]

    # the uninterrupted run, and the previous folder an --overwrite run replaces
    ref = root / "reference" / "out"
    status, _ = run_child([a for a in fill(spec["args"], ref) if a != "--overwrite"], root / "reference", None)
    assert status == "exit(0)", status
    new = fingerprint(ref, kind)
    old = template = None
    if spec.get("old_args"):
        template = root / "previous" / "out"
        status, _ = run_child(fill(spec["old_args"], template), root / "previous", None)
        assert status == "exit(0)", status
        old = fingerprint(template, kind)
    work = root / "work"
    dest = work / "out"
    args = fill(spec["args"], dest)

    def setup() -> None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        if template is not None:
            shutil.copytree(template, dest)

    setup()
    status, ops = run_child(args, work, None)  # the steps of this very command, previous folder included
    assert status == "exit(0)", status
    print(json.dumps({"steps": len(ops), "ops": ops}), flush=True)
    if spec["points"] == "all":
        points = [(n, when) for n in range(1, len(ops) + 1) for when in ("before", "after")] + [(len(ops) + 1, "before")]
    else:
        points = [(_select(ops, which), when) for which, when in spec["points"]]
    for point in points:
        setup()
        status, done = run_child(args, work, point)
        record = {"point": list(point), "status": status, "op": done[-1] if done else None,
                  "state": classify(dest, kind, old, new), "hidden": hidden(dest)}
        if spec.get("rerun") and (record["state"] != "new" or "--overwrite" in args):
            status, _ = run_child(args, work, None)
            record.update(rerun_status=status, rerun_state=classify(dest, kind, old, new),
                          rerun_hidden=hidden(dest))
        print(json.dumps(record), flush=True)


def _select(ops: list[str], which) -> int:
    """Step number: an int, or the first step whose line contains ``which``, or ``"last"``."""
    if isinstance(which, int):
        return which
    if which == "last":
        return len(ops)
    return next(i for i, line in enumerate(ops, start=1) if which in line)


if __name__ == "__main__":
    main()
