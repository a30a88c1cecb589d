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


# One child interpreter imports each module first, after forgetting every comment_stance module
# imported before it: an import circle fails only when one of its modules comes first, and the
# third-party libraries stay loaded, so the check takes seconds rather than one interpreter each.
CHILD = """
import importlib, sys
failed = {}
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "comment_stance" or m.startswith("comment_stance.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = f"{type(exc).__name__}: {exc}"
print(failed)
"""


def test_every_module_imports_first_with_no_other_module_of_the_package_loaded():
    assert {"comment_stance.experiments.runner", "comment_stance.report", "comment_stance.persist"} <= set(MODULES)
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    result = subprocess.run([sys.executable, "-c", CHILD, *MODULES], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "{}", result.stdout


def test_the_check_finds_a_circle(tmp_path):
    """The child above reports a module whose import runs into a partly initialized one."""
    package = tmp_path / "circle"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from circle.b import B\nA = 1\n")
    (package / "b.py").write_text("from circle.a import A\nB = 1\n")
    code = CHILD.replace('"comment_stance"', '"circle"').replace('"comment_stance."', '"circle."')
    result = subprocess.run([sys.executable, "-c", code, "circle.a", "circle.b"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert "circle.a" in result.stdout and "circle.b" in result.stdout and "ImportError" in result.stdout


def test_report_reads_runs_without_the_runner():
    """report -> experiments.runs only; the runner imports the report when it draws one."""
    import ast

    tree = ast.parse((PACKAGE / "report.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert "experiments.runs" in imported and not imported & {"experiments", "experiments.runner"}
