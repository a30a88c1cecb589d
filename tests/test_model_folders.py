"""Model and run folders: what --overwrite may replace, atomic replacement, hostile folders,
side effects and import layering."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from comment_stance import persist
from comment_stance.cli import app
from comment_stance.errors import ModelError, OutputError
from comment_stance.models import make_model
from comment_stance.persist import check_destination, load_model, save_model, staged_folder

from .conftest import FIXTURES, REPO

runner = CliRunner()
TEXTS = ["Sign it now.", "Only with monitors.", "Never."]


def _train_cli(*args):
    return runner.invoke(app, ["train", "--data", str(FIXTURES / "tiny"), "-q", *[str(a) for a in args]])


@pytest.fixture(scope="module")
def tiny_train():
    from comment_stance.data import load_dataset

    return load_dataset(FIXTURES / "tiny").train


@pytest.fixture
def majority(tiny_train):
    return make_model("majority").fit(tiny_train, tiny_train["label"])


@pytest.fixture
def tfidf(tiny_train):
    return make_model("tfidf-logreg", char_ngrams=None).fit(tiny_train, tiny_train["label"])


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# -- what --overwrite may replace -----------------------------------------------------------------
def test_overwrite_refuses_a_folder_with_unrelated_files(tmp_path):
    folder = tmp_path / "my-stuff"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    (folder / "other-model").mkdir()
    (folder / "other-model" / "config.json").write_text("{}")
    result = _train_cli("--model", "majority", "--out", folder, "--overwrite")
    assert result.exit_code == 1
    assert f"error: {folder}: was not written by 'stance train'" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert (folder / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in folder.iterdir()) == ["other-model", "thesis.tex"]
    assert [p.name for p in tmp_path.iterdir()] == ["my-stuff"]  # no staging folder left behind


def test_overwrite_refuses_a_model_folder_holding_a_foreign_file(tmp_path, majority):
    folder = save_model(majority, tmp_path / "m")
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="holds 'notes.txt'") as err:
        save_model(majority, folder, overwrite=True)
    assert "move notes.txt out" in err.value.hint
    assert (folder / "notes.txt").read_text() == "mine" and load_model(folder).family == "majority"


def test_overwrite_replaces_a_model_folder_written_by_train(tmp_path):
    folder = tmp_path / "m"
    assert _train_cli("--model", "majority", "--out", folder).exit_code == 0
    assert json.loads((folder / "config.json").read_text())["family"] == "majority"
    assert (folder / "confusion-test.png").is_file()
    again = _train_cli("--model", "tfidf-logreg", "--param", "char_ngrams=none", "--out", folder)
    assert again.exit_code == 1 and "already exists" in again.output
    result = _train_cli("--model", "tfidf-logreg", "--param", "char_ngrams=none", "--out", folder, "--overwrite")
    assert result.exit_code == 0, result.output
    assert load_model(folder).family == "tfidf" and (folder / "weights" / "pooled.skops").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # the old folder is gone, nothing hidden left


@pytest.mark.parametrize("where", ["cwd", "ancestor", "home"])
def test_overwrite_refuses_the_working_folder_its_ancestors_and_home(tmp_path, monkeypatch, majority, where):
    folder = save_model(majority, tmp_path / "m")  # a genuine model folder, so only the place refuses it
    inner = folder / "weights"
    inner.mkdir()
    monkeypatch.chdir({"cwd": folder, "ancestor": inner, "home": tmp_path}[where])
    if where == "home":
        monkeypatch.setenv("HOME", str(folder))
    target = {"cwd": Path("."), "ancestor": Path(".."), "home": folder}[where]
    with pytest.raises(OutputError, match="will not be replaced"):
        save_model(majority, target, overwrite=True)
    assert load_model(folder).family == "majority" and inner.is_dir()


def test_root_is_refused():
    with pytest.raises(OutputError, match="will not be replaced"):
        check_destination(Path("/"), overwrite=True)


def test_a_file_and_a_symlink_are_refused_as_destinations(tmp_path, majority):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        save_model(majority, tmp_path / "file", overwrite=True)
    assert (tmp_path / "file").read_text() == "x"
    real = save_model(majority, tmp_path / "real")
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(OutputError, match="symbolic link"):
        save_model(majority, tmp_path / "link", overwrite=True)


def test_model_and_run_folders_do_not_replace_each_other(tmp_path, majority):
    from comment_stance.experiments import run_experiment

    model_folder = save_model(majority, tmp_path / "m")
    with pytest.raises(OutputError, match="is a model folder, not a run folder"):
        run_experiment(FIXTURES / "experiment-tiny.toml", out=model_folder, overwrite=True, report=False)
    run_folder = tmp_path / "run"
    run_folder.mkdir()
    (run_folder / "run.json").write_text(json.dumps({"comment_stance": "0.1.0", "jobs": 1}))
    (run_folder / "config.toml").write_text("")
    with pytest.raises(OutputError, match="is a run folder, not a model folder"):
        save_model(majority, run_folder, overwrite=True)
    with pytest.raises(OutputError, match="was not written by 'stance experiment run'"):
        run_experiment(FIXTURES / "experiment-tiny.toml", out=tmp_path, overwrite=True, report=False)
    assert load_model(model_folder).family == "majority"


def test_train_checks_the_destination_before_training(tmp_path, monkeypatch):
    from comment_stance import training

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x").write_text("x")
    monkeypatch.setattr(training, "load_dataset", lambda *a, **k: pytest.fail("trained before checking --out"))
    with pytest.raises(OutputError, match="already exists"):
        training.train(FIXTURES / "tiny", "majority", tmp_path / "m")


# -- replacing atomically ---------------------------------------------------------------------------
def test_a_failure_while_building_keeps_the_old_folder(tmp_path, majority, tfidf):
    folder = save_model(tfidf, tmp_path / "m")
    before = load_model(folder).predict_proba(TEXTS)

    def explode(staging):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_model(majority, folder, overwrite=True, extras=explode)
    np.testing.assert_array_equal(load_model(folder).predict_proba(TEXTS), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_a_failed_final_rename_puts_the_old_folder_back(tmp_path, monkeypatch, majority, tfidf):
    folder = save_model(tfidf, tmp_path / "m")
    before = load_model(folder).predict_proba(TEXTS)
    real_rename = os.rename

    def rename(src, dst):
        if Path(dst) == folder and ".partial-" in Path(src).name:
            raise OSError("simulated crash between the two renames")
        return real_rename(src, dst)

    monkeypatch.setattr(persist.os, "rename", rename)
    with pytest.raises(OSError, match="simulated"):
        save_model(majority, folder, overwrite=True)
    monkeypatch.undo()
    np.testing.assert_array_equal(load_model(folder).predict_proba(TEXTS), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_a_process_killed_between_the_renames_gets_its_old_folder_back(tmp_path, majority, tfidf):
    """Simulates SIGKILL after 'rename old aside' and before 'rename new into place'."""
    folder = save_model(tfidf, tmp_path / "m")
    before = load_model(folder).predict_proba(TEXTS)
    pid = _dead_pid()
    aside = tmp_path / f".m.old-{pid}-abcd"
    aside.mkdir()
    folder.rename(aside / "folder")
    half = tmp_path / f".m.partial-{pid}-ef01"
    half.mkdir()
    (half / "config.json").write_text('{"format_version": 1')  # half-written, never loaded
    assert not folder.exists()
    with pytest.raises(OutputError, match="already exists"):  # recovered first, then not clobbered
        save_model(majority, folder)
    np.testing.assert_array_equal(load_model(folder).predict_proba(TEXTS), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_siblings_of_a_live_process_are_left_alone(tmp_path, majority):
    busy = tmp_path / f".m.partial-{os.getppid()}-0000"
    busy.mkdir()
    save_model(majority, tmp_path / "m")
    assert busy.is_dir()


def test_staged_folder_builds_run_folders_too(tmp_path):
    with staged_folder(tmp_path / "run", kind="run") as staging:
        (staging / "run.json").write_text(json.dumps({"comment_stance": "x", "jobs": 0}))
        (staging / "config.toml").write_text("")
        assert not (tmp_path / "run").exists()
    assert persist.folder_kind(tmp_path / "run") == "run"
