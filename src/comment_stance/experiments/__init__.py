"""Reproducible experiments: a TOML config in, a self-describing run folder out.

A config has four kinds of section (see ``experiments/README.md`` for a full example)::

    [experiment]                      name, description, seeds, runs_dir, save_models
    [models.<name>]                   preset = "tfidf-svm", then hyper-parameters (C = 0.5, ...)
    [evaluations.<name>]              protocol, data, models, folds, group, test_split (shots, base, reference)
    [scoring]                         polar, bootstrap, confidence, significance, baselines, annotations

Protocols: ``fixed`` (train on the ``train`` file, test on the ``test`` file of a dataset
folder), ``stratified-kfold`` and ``grouped-kfold`` (k folds over all labelled comments of
``data``, the latter keeping each ``group``, by default the article, in one fold), and
``leave-one-article-out`` (one fold per value of ``group``: train on all articles but one, test on
it), and ``few-shot`` (a new pact with few labels: per held-out group a base model, adapted on
0, 16, 32, 64... labelled comments of the group and scored on the rest of it; the learning
curve goes into metrics.json and the report, see ``docs/few-shot.md``). Every model is trained
once per seed (and fold); seeds are aggregated as mean ± std.

:func:`run_experiment` writes one run folder::

    config.toml        the resolved config: the file, the overrides, and every default filled in
    run.json           what ran: source file, overrides, data hashes, models, start/end, duration
    environment.json   python, machine, package versions, git commit
    metrics.json       per evaluation, model and seed: the scores (deterministic for a given config)
    timings.json       training seconds and inference rows/s (the only part that varies run to run)
    predictions/<evaluation>/<model>/seed-<n>.jsonl
                       id, gold, predicted, probabilities (and article, target, text, fold)
    report.md, report.html   the leaderboard (see :mod:`comment_stance.report`)

The package's modules: :mod:`.config` (schema, loading, overrides, TOML), :mod:`.protocols` (the
data and folds of each protocol), :mod:`.runner` (:func:`run_experiment`), :mod:`.runs` (reading
run folders back, the recorded environment). :mod:`comment_stance.report` reads runs through
:mod:`.runs` only; the runner draws the report last, importing it when it is asked to.

In Python (a full run trains every model, so this stays an example to read; the tests run the
tiny fixture ``tests/fixtures/experiment-tiny.toml``)::

    from comment_stance.experiments import load_config, run_experiment
    config = load_config("experiments/baseline.toml", {"experiment.seeds": "[1]"})
    run = run_experiment(config, out="experiments/runs/baseline-seed1")
    run.metrics["evaluations"]["random"]["models"]["tfidf-svm"]["summary"]["macro_f1"]
"""

from __future__ import annotations

from ..errors import ConfigError
from ..values import parse_value
from .config import (DEFAULT_RUNS_DIR, EVALUATION_KEYS, PROTOCOLS, SECTIONS, SIGNIFICANCE_TESTS, dump_toml,
                     load_config, model_params)
from .protocols import EvaluationData, Fold, load_evaluation_data
from .runner import PREDICTION_COLUMNS, Job, evaluation_seeds, plan, run_experiment, summarize
from .runs import (PACKAGES, RUN_FILES, Run, environment, git_commit, iter_runs, latest_run, load_run,
                   source_sha256)

__all__ = [
    "ConfigError", "DEFAULT_RUNS_DIR", "EVALUATION_KEYS", "EvaluationData", "Fold", "Job", "PACKAGES",
    "PREDICTION_COLUMNS", "PROTOCOLS", "RUN_FILES", "Run", "SECTIONS", "SIGNIFICANCE_TESTS", "dump_toml",
    "environment", "git_commit", "iter_runs", "latest_run", "load_config", "load_evaluation_data", "load_run",
    "evaluation_seeds", "model_params", "parse_value", "plan", "run_experiment", "source_sha256", "summarize",
]
