"""The error-analysis notebook runs headless on a small run, so that it cannot rot."""

import json

import pytest

from comment_stance.experiments import run_experiment

from .conftest import FIXTURES, REPO

NOTEBOOK = REPO / "notebooks" / "01-error-analysis.ipynb"


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_notebook_is_committed_clean_and_defines_nothing():
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in code_cells(notebook):
        assert not cell.outputs and cell.execution_count is None, "commit the notebook without outputs"
        # logic lives in the package: the notebook only calls and displays
        assert "def " not in cell.source and "class " not in cell.source and "lambda" not in cell.source
    assert "from comment_stance" in "".join(cell.source for cell in code_cells(notebook))


def test_notebook_executes_on_a_tiny_run(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    ids = [json.loads(line)["id"] for line in (FIXTURES / "tiny" / "test.jsonl").read_text().splitlines()]
    annotations = tmp_path / "phenomena.jsonl"
    annotations.write_text("".join(json.dumps({"id": i, "phenomena": ["irony"] if n % 2 else ["negation", "irony"]}) + "\n"
                                   for n, i in enumerate(ids)))
    monkeypatch.chdir(REPO)
    run = run_experiment(FIXTURES / "experiment-tiny.toml", out=tmp_path / "run", report=False,
                         overrides={"experiment.seeds": "[0]", "scoring.bootstrap": "50",
                                    "scoring.annotations": str(annotations)})
    monkeypatch.setenv("STANCE_RUN", str(run.folder))
    monkeypatch.setenv("STANCE_EVALUATION", "fixed")
    monkeypatch.delenv("STANCE_MODEL", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(REPO / "notebooks")}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, if any cell fails
    outputs = [output for cell in code_cells(notebook) for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the confusion matrix and the per-article chart
    text = json.dumps([o.get("data", {}) for o in outputs])
    assert "negation" in text and "art0" in text and "tfidf-svm" in text
