"""Doctests of the package (``pytest`` collects them from ``src/``, see ``pyproject.toml``).

Each doctest runs in its own scratch folder laid out like a checkout: ``data`` and ``tests``
point at this repository, and ``models/tfidf-logreg`` is a TF-IDF model trained once per session
on the tiny test fixture (a second or two). So docstring examples use the paths the README
uses, run fast, never import torch, and write only into the scratch folder. Examples that need
a whole experiment run stay prose.
"""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def doctest_models(tmp_path_factory) -> Path:
    from comment_stance import train

    models = tmp_path_factory.mktemp("doctest-models")
    train(REPO / "tests" / "fixtures" / "tiny", "tfidf-logreg", models / "tfidf-logreg")
    return models


@pytest.fixture(autouse=True)
def _doctest_in_a_scratch_checkout(request, tmp_path, monkeypatch):
    if type(request.node).__name__ != "DoctestItem":
        yield
        return
    for name in ("data", "tests"):
        (tmp_path / name).symlink_to(REPO / name, target_is_directory=True)
    (tmp_path / "models").symlink_to(request.getfixturevalue("doctest_models"), target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    torch_before = "torch" in sys.modules
    yield
    # examples stay on the light path: none may pull in torch
    assert torch_before or "torch" not in sys.modules, f"{request.node.name} imported torch"
