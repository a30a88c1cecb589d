"""An interrupted experiment run continues from its checkpoints (``stance experiment run --resume``)."""

import json
import shlex

import pytest
from typer.testing import CliRunner

from comment_stance.cli import app
from comment_stance.errors import DataError, OutputError
from comment_stance.experiments import load_config, run_experiment
from comment_stance.experiments.checkpoints import checkpoint_folder
from comment_stance.experiments.runner import FittedModels

from .conftest import FIXTURES

CONFIG = FIXTURES / "experiment-tiny.toml"
runner = CliRunner()
ONE_SEED = {"experiment.seeds": "[0]", "scoring.bootstrap": "50"}


@pytest.fixture(autouse=True)
def in_repo(monkeypatch, repo):
    monkeypatch.chdir(repo)


@pytest.fixture
def trained(monkeypatch):
    """Every (preset, fold) the experiment trains, in order."""
    calls = []
    fit = FittedModels.fit

    def counting(self, fold, dataset, preset, params, folder, progress):
        calls.append((preset, fold))
        return fit(self, fold, dataset, preset, params, folder, progress)

    monkeypatch.setattr(FittedModels, "fit", counting)
    return calls


def stop_after(folds: int):
    """An ``on_event`` that stops the run as Ctrl-C would, once ``folds`` folds have finished."""
    seen = []

    def on_event(event):
        if event["kind"] == "fold":
            seen.append(event)
            if len(seen) == folds:
                raise KeyboardInterrupt

    return on_event


def kept(run_folder) -> list[str]:
    folder = checkpoint_folder(run_folder) / "folds"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.json"))


def test_an_interrupted_run_resumes_without_training_its_finished_folds_again(tmp_path, trained):
    reference = run_experiment(CONFIG, overrides=ONE_SEED, out=tmp_path / "reference", report=False)
    total = len(trained)
    assert total == 3 * (1 + 3 + 2) + 2 * 2  # fixed, kfold, by-article for three models; loao for two
    assert not checkpoint_folder(reference.folder).exists()
    assert "resumed" not in reference.info

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(CONFIG, overrides=ONE_SEED, out=out, report=False, on_event=stop_after(7))
    assert not out.exists()  # no half-written run folder
    assert len(kept(out)) == 7 and "fixed/majority/seed-0/test.json" in kept(out)

    trained.clear()
    run = run_experiment(CONFIG, overrides=ONE_SEED, out=out, report=False, resume=True)
    assert len(trained) == total - 7  # only the folds the interrupted run had not finished
    assert run.metrics == reference.metrics
    for path in sorted((reference.folder / "predictions").rglob("*.jsonl")):
        assert (out / path.relative_to(reference.folder)).read_text() == path.read_text()
    resumed = run.info["resumed"]
    assert resumed["folds"] == 7 and resumed["of"] == total and len(resumed["taken"]) == 7
    assert resumed["comment_stance"] and resumed["written"][0] <= resumed["written"][1]
    assert not checkpoint_folder(out).exists()  # the run folder is complete: the checkpoints are gone
    from comment_stance.report import leaderboard, markdown

    assert f"resumed: 7 of {total} folds taken from checkpoints written {resumed['written'][0]}" in \
        markdown(leaderboard(run))
    assert "resumed:" not in markdown(leaderboard(reference))


def test_checkpoints_are_never_dropped_without_being_asked(tmp_path, trained):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(CONFIG, overrides=ONE_SEED, out=out, report=False, on_event=stop_after(2))
    before = kept(out)
    with pytest.raises(OutputError, match=r"holds 2 finished fold\(s\) of an interrupted run") as error:
        run_experiment(CONFIG, overrides=ONE_SEED, out=out, report=False)
    assert "--resume" in error.value.hint and "--overwrite" in error.value.hint
    assert kept(out) == before and not out.exists()
    trained.clear()
    run = run_experiment(CONFIG, overrides=ONE_SEED, out=out, report=False, overwrite=True)  # asked: start over
    assert len(trained) == 22 and "resumed" not in run.info and not checkpoint_folder(out).exists()
    # --resume with nothing to resume simply starts, as `stance predict --resume` does
    other = run_experiment(CONFIG, overrides=ONE_SEED, out=tmp_path / "other", report=False, resume=True)
    assert "resumed" not in other.info and other.metrics == run.metrics


def test_a_folder_it_did_not_write_is_neither_resumed_nor_deleted(tmp_path):
    foreign = checkpoint_folder(tmp_path / "run")
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    for flags in ({"resume": True}, {"overwrite": True}, {}):
        with pytest.raises(OutputError, match="no checkpoints.json"):
            run_experiment(CONFIG, overrides=ONE_SEED, out=tmp_path / "run", report=False, **flags)
    assert (foreign / "notes.txt").read_text() == "mine" and not (tmp_path / "run").exists()


def test_a_fold_trained_with_other_settings_is_refused_not_mixed_in(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(CONFIG, overrides=ONE_SEED, out=out, report=False, on_event=stop_after(3))
    assert "fixed/tfidf-svm/seed-0/test.json" in kept(out)
    changed = {**ONE_SEED, "models.tfidf-svm.C": "0.25"}
    with pytest.raises(OutputError, match=r"tfidf-svm/seed-0/test\.json: was written for other settings"):
        run_experiment(CONFIG, overrides=changed, out=out, report=False, resume=True)
    assert len(kept(out)) == 3 and not out.exists()


def test_saved_models_of_finished_folds_reach_the_run_folder(tmp_path, trained):
    config = load_config(CONFIG, {**ONE_SEED, "experiment.save_models": "true"})
    config["evaluations"] = {"fixed": config["evaluations"]["fixed"]}
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, out=out, report=False, on_event=stop_after(2))
    assert (checkpoint_folder(out) / "models/fixed/tfidf-logreg/seed-0/config.json").is_file()
    assert kept(out) == ["fixed/majority/seed-0/test.json", "fixed/tfidf-logreg/seed-0/test.json"]
    trained.clear()
    run = run_experiment(config, out=out, report=False, resume=True)
    assert trained == [("tfidf-svm", "test")]
    for model in ("majority", "tfidf-logreg", "tfidf-svm"):
        assert (run.folder / "models/fixed" / model / "seed-0/config.json").is_file()
        assert (run.folder / "models/fixed" / model / "seed-0/metrics.json").is_file()


def test_cli_names_the_command_that_continues_a_stopped_run(tmp_path, monkeypatch):
    import comment_stance.evaluation as evaluation

    calls = []
    evaluate = evaluation.evaluate_model

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise DataError("disk full (simulated)", "free some space")
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate_model", failing)
    out = tmp_path / "run"
    args = ["experiment", "run", str(CONFIG), "--out", str(out), "--experiment.seeds", "0", "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "error: disk full (simulated)" in result.output
    line = next(line for line in result.output.splitlines() if line.startswith("stopped:"))
    assert f"3 finished fold(s) kept in {checkpoint_folder(out)}" in line
    command = shlex.split(line.split("continue with: ", 1)[1])
    assert command[:4] == ["stance", "experiment", "run", str(CONFIG)] and command[-1] == "--resume"
    assert "--experiment.seeds" in command

    monkeypatch.setattr(evaluation, "evaluate_model", evaluate)
    again = runner.invoke(app, command[1:])
    assert again.exit_code == 0, again.output
    info = json.loads((out / "run.json").read_text())
    assert info["resumed"]["folds"] == 3 and not checkpoint_folder(out).exists()
