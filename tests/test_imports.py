"""Every module imports on its own, in a fresh interpreter: no import circles, whatever the order."""

import os
import subprocess
import sys
from pathlib import Path

import comment_stance

PACKAGE = Path(comment_stance.__file__).resolve().parent
MODULES = sorted(
    "comment_stance." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
    for path in PACKAGE.rglob("*.py")
)


def test_every_module_imports_first_in_a_fresh_interpreter():
    assert {"comment_stance.experiments.runner", "comment_stance.report", "comment_stance.persist"} <= set(MODULES)
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    # all at once, each in its own interpreter (a circle fails only when its module comes first)
    procs = {m: subprocess.Popen([sys.executable, "-c", f"import {m}"], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for m in MODULES}
    failed = {}
    for module, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        if proc.returncode:
            failed[module] = err.strip().splitlines()[-1]
    assert not failed, failed


def test_report_reads_runs_without_the_runner():
    """report -> experiments.runs only; the runner imports the report when it draws one."""
    import ast

    tree = ast.parse((PACKAGE / "report.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert "experiments.runs" in imported and not imported & {"experiments", "experiments.runner"}
