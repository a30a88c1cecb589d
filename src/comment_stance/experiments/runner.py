"""Running an experiment: every (evaluation, model, seed) job, its predictions and metrics,
assembled into a run folder."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import DataError
from ..persist import check_destination, staged_folder
from .checkpoints import Checkpoints, fingerprint
from .config import adapt_params, dump_toml, load_config, model_params
from .protocols import EvaluationData, load_evaluation_data
from .runs import RUN_FILES, Run, _command_line, _plain, _write_json, environment, load_run



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
            for evaluation in config["evaluations"]
            for seed in evaluation_seeds(config, evaluation)
            for model in config["evaluations"][evaluation]["models"]]


def _check_backbones(config: dict[str, Any]) -> None:
    """Before any training: every backbone a model names by its install name (``all-mpnet-base-v2``,
    see :mod:`comment_stance.backbones`) is installed, else ``ModelError`` naming the model and the
    install command."""
    from ..backbones import backbone_path, find_backbone
    from ..errors import ModelError

    for name in config["models"]:
        _, params = model_params(config, name)
        members = params.get("member_params") if isinstance(params.get("member_params"), dict) else {}
        named = [params.get("base_model")] + [p.get("base_model") for p in members.values() if isinstance(p, dict)]
        for base in named:
            if isinstance(base, str) and find_backbone(base) and not Path(base).expanduser().exists():
                try:
                    backbone_path(base)
                except ModelError as exc:
                    raise ModelError(f"model '{name}': {exc.message}", exc.hint) from None


def evaluation_seeds(config: dict[str, Any], evaluation: str) -> list[int]:
    """The seeds ``evaluation`` runs: its own ``seeds``, else ``[experiment] seeds``."""
    return config["evaluations"][evaluation].get("seeds") or config["experiment"]["seeds"]


def run_experiment(
    config: str | Path | dict[str, Any],
    *,
    overrides: dict[str, Any] | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    report: bool = True,
    resume: bool = False,
) -> "Run":
    """Train and test every model of ``config`` under each of its evaluations and seeds, and
    write a run folder (see the module docstring). Returns the loaded :class:`Run`.

    ``config`` is a TOML path or an already resolved config (from :func:`load_config`). The
    folder is ``out``, or ``<runs_dir>/<name>-<timestamp>``; an existing non-empty folder is
    replaced only with ``overwrite=True``. It is assembled beside its destination and moved
    into place at the end, so an interrupted run leaves nothing half-written. ``on_event``
    receives a dict after every fold (``kind="fold"``) and job (``kind="job"``); ``progress``
    lets models that can (the transformer) show their own progress bars.

    Every finished fold is also kept in ``<folder>.checkpoints`` (see
    :mod:`~comment_stance.experiments.checkpoints`) until the run folder is complete; when a run
    is interrupted, ``resume=True`` with the same ``out`` takes those folds instead of training
    them again (``on_event`` gets ``kind="interrupted"`` with the count). Which folds were taken,
    and when and by which code they were written, is recorded in ``run.json`` under ``resumed``.
    """
    source_path = None if isinstance(config, dict) else str(config)
    config = load_config(config, overrides)  # a resolved config resolves to itself
    emit = on_event or (lambda event: None)
    folder = _run_folder(config, out, overwrite)
    checkpoints = Checkpoints(folder, resume=resume, overwrite=overwrite)
    started = datetime.now(timezone.utc)
    wall = time.perf_counter()
    annotations = _read_annotations(config["scoring"]["annotations"])
    data = {name: load_evaluation_data(name, spec) for name, spec in config["evaluations"].items()}
    _check_backbones(config)
    jobs = plan(config)
    emit({"kind": "plan", "jobs": len(jobs), "folder": str(folder), "checkpoints": checkpoints.count()})

    with staged_folder(folder, overwrite=overwrite, kind="run") as staging:
        metrics: dict[str, Any] = {"evaluations": {}}
        timings: dict[str, Any] = {"evaluations": {}}
        predictions: dict[tuple[str, str], list[list[str]]] = {}
        fitted = FittedModels()
        total_folds = 0
        for number, job in enumerate(jobs, start=1):
            try:
                if data[job.evaluation].spec["protocol"] == "few-shot":
                    result = _run_few_shot_job(job, config, data[job.evaluation], staging, annotations, progress,
                                               emit, fitted, checkpoints)
                else:
                    result = _run_job(job, config, data[job.evaluation], staging, annotations, progress, emit,
                                      fitted, checkpoints)
            except BaseException:
                kept = checkpoints.interrupted()
                if kept:
                    emit({"kind": "interrupted", "folder": str(folder), "checkpoints": str(checkpoints.folder),
                          "folds": kept})
                raise
            total_folds += result["timing"]["folds"]
            predictions.setdefault((job.evaluation, job.model), []).append(result["predicted"])
            evaluation = metrics["evaluations"].setdefault(job.evaluation, _evaluation_header(data[job.evaluation]))
            evaluation["models"].setdefault(job.model, {"seeds": {}})["seeds"][str(job.seed)] = result["metrics"]
            timings["evaluations"].setdefault(job.evaluation, {}).setdefault(job.model, {})[str(job.seed)] = result["timing"]
            emit({"kind": "job", "number": number, "jobs": len(jobs), "evaluation": job.evaluation, "model": job.model,
                  "seed": job.seed, "macro_f1": result.get("headline", result["metrics"]["macro_f1"]),
                  "train_s": result["timing"]["train_s"]})
        for name, evaluation in metrics["evaluations"].items():
            for model, entry in evaluation["models"].items():
                if data[name].spec["protocol"] == "few-shot":
                    entry["summary"] = summarize_curve(entry["seeds"], config["scoring"])
                    continue
                gold = data[name].table["label"].astype(str).tolist()
                entry["summary"] = summarize(entry["seeds"], gold, predictions[(name, model)], config["scoring"])
        checkpoints.move_models(staging)  # save_models: the fixed-split models, kept with the checkpoints until now
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
        resumed = checkpoints.summary(total_folds)
        if resumed:
            info["resumed"] = resumed
        _write_json(staging / RUN_FILES["metrics"], metrics)
        _write_json(staging / RUN_FILES["timings"], timings)
        _write_json(staging / RUN_FILES["run"], info)
        _write_json(staging / RUN_FILES["environment"], environment())
        (staging / RUN_FILES["config"]).write_text(
            f"# resolved config of run {folder.name}: rerun with `stance experiment run {folder / RUN_FILES['config']}`\n"
            + dump_toml(config), encoding="utf-8")
        if report:  # inside the staged folder, so that a crash never leaves a run without its report
            from ..report import leaderboard, write_report

            staged = Run(staging)
            write_report(staged, staging, board={**leaderboard(staged), "run": folder.name})
    checkpoints.remove()  # the run folder is complete: they have served
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


class FittedModels:
    """The models fitted so far for one evaluation and seed, by fold, preset and hyper-parameters,
    so that an ensemble whose members the experiment has already trained on the same fold takes
    them instead of training them again (the same data, settings and seed give the same model)."""

    def __init__(self):
        self._scope: tuple[str, int] | None = None
        self._models: dict[tuple[str, str, str], tuple[Any, float]] = {}

    def scope(self, evaluation: str, seed: int) -> None:
        """Start on ``evaluation`` and ``seed``; models of an earlier scope are let go."""
        if self._scope != (evaluation, seed):
            self._scope, self._models = (evaluation, seed), {}

    @staticmethod
    def _key(fold: str, preset: str, params: dict[str, Any]) -> tuple[str, str, str]:
        return fold, preset, json.dumps(params, sort_keys=True, default=repr)

    def add(self, fold: str, preset: str, params: dict[str, Any], model: Any, seconds: float) -> None:
        self._models[self._key(fold, preset, params)] = (model, seconds)

    def lookup(self, fold: str) -> Callable[[str, dict[str, Any]], tuple[Any, float] | None]:
        return lambda preset, params: self._models.get(self._key(fold, preset, params))

    def fit(self, fold: str, dataset: Any, preset: str, params: dict[str, Any], folder: Path | None,
            progress: bool, whole: bool = False) -> tuple[Any, float, int]:
        """Train ``preset`` on ``dataset`` (an ensemble taking the members already fitted on
        ``fold``), remember it, and return the training result, its cost in seconds (an
        ensemble's includes its reused members' training) and how many models were reused.

        With ``whole`` (the few-shot protocol's bases, which are never saved) a model already
        fitted on ``fold`` with the same preset and settings is taken as it is: two models that
        differ only in how they adapt share their base."""
        from types import SimpleNamespace

        from ..models import make_model
        from ..training import train

        estimator = make_model(preset, **params)
        settings = estimator.get_params(deep=False)
        if whole and folder is None:
            found = self.lookup(fold)(preset, settings)
            if found is not None:
                return SimpleNamespace(model=found[0], time_s=found[1]), found[1], 1
        if hasattr(estimator, "reuse"):
            estimator.reuse(self.lookup(fold))
        fitted = train(dataset, estimator, folder, evaluate_on=(), progress=progress, preset=preset)
        self.add(fold, preset, settings, fitted.model, fitted.time_s)
        seconds, reused = fitted.time_s, 0
        if getattr(fitted.model, "reused_members_", None):
            pairs = list(zip(fitted.model.member_fit_s_, fitted.model.reused_members_))
            seconds += sum(s for s, r in pairs if r)
            reused = sum(r for _, r in pairs)
        return fitted, seconds, reused


def _evaluation_print(config: dict[str, Any], data: EvaluationData) -> dict[str, Any]:
    """What of an evaluation decides its folds' results, for checkpoint fingerprints."""
    return {"spec": {k: v for k, v in data.spec.items() if k not in ("models", "seeds")}, "data": data.hashes,
            "polar": config["scoring"]["polar"]}


def _ids_print(*tables: pd.DataFrame | None) -> str:
    return fingerprint(ids=[None if table is None else [str(i) for i in table["id"]] for table in tables])


def _run_job(job: Job, config: dict[str, Any], data: EvaluationData, staging: Path, annotations: pd.DataFrame | None,
             progress: bool, emit: Callable, fitted_models: FittedModels | None = None,
             checkpoints: Checkpoints | None = None) -> dict[str, Any]:
    from ..data import Dataset
    from ..evaluation import evaluate_model
    from ..metrics import score
    from ..persist import write_metrics

    preset, params = model_params(config, job.model)
    scoring = config["scoring"]
    polar = scoring["polar"] or None
    n = len(data.table)
    predicted: list[str | None] = [None] * n
    probabilities: list[dict[str, float] | None] = [None] * n
    fold_of: list[str | None] = [None] * n
    position = {row_id: i for i, row_id in enumerate(data.table["id"])}
    classes: set[str] = set()
    folds, train_s, predict_s, reused = [], 0.0, 0.0, 0
    save = config["experiment"]["save_models"] and data.spec["protocol"] == "fixed"
    fitted_models = fitted_models or FittedModels()
    fitted_models.scope(job.evaluation, job.seed)
    evaluation_print = _evaluation_print(config, data)
    for fold in data.folds(job.seed):
        dataset = Dataset(train=fold.train, dev=fold.dev, source=Path(data.spec["data"]))
        estimator_params = dict(params)
        if "seed" in _known_params(preset):
            estimator_params["seed"] = job.seed
        model_folder = None
        if save:
            model_folder = (checkpoints.model_folder(job.evaluation, job.model, job.seed) if checkpoints
                            else staging / "models" / job.evaluation / job.model / f"seed-{job.seed}")
        print_ = fingerprint(kind="fold", evaluation=evaluation_print, preset=preset, params=estimator_params,
                             fold=fold.name, ids=_ids_print(fold.train, fold.dev, fold.test))
        stored = None
        if checkpoints is not None and (model_folder is None or model_folder.is_dir()):
            stored = checkpoints.load(job.evaluation, job.model, job.seed, fold.name, print_)
        if stored is None:
            if model_folder is not None and model_folder.exists():  # written before an interruption, never checkpointed
                shutil.rmtree(model_folder)
            fitted, fit_s, taken = fitted_models.fit(fold.name, dataset, preset, estimator_params, model_folder,
                                                     progress)
            start = time.perf_counter()
            result = evaluate_model(fitted.model, fold.test, polar=polar, context=data.context or [fold.train],
                                    n_resamples=0, return_predictions=True)
            elapsed = time.perf_counter() - start
            labels = [str(c) for c in fitted.model.classes_]
            stored = {"ids": [_plain(i) for i in fold.test["id"]], "predicted": [str(p) for p in result["predictions"]],
                      "probabilities": [[round(float(p), 6) for p in proba] for proba in result["probabilities"]],
                      "labels": labels,
                      "scores": {k: result[k] for k in ("n", "accuracy", "macro_f1", "f_avg") if k in result},
                      "train_s": fit_s, "predict_s": elapsed, "reused": taken}
            if model_folder is not None:
                write_metrics(model_folder, {data.spec.get("test_split", "test"): result})
            if checkpoints is not None:
                checkpoints.save(job.evaluation, job.model, job.seed, fold.name, print_, stored)
        fit_s = stored["train_s"]
        reused += stored["reused"]
        train_s += fit_s
        predict_s += stored["predict_s"]
        labels = stored["labels"]
        classes.update(labels)
        for row_id, label, proba in zip(stored["ids"], stored["predicted"], stored["probabilities"]):
            i = position[row_id]
            predicted[i] = label
            probabilities[i] = dict(zip(labels, proba))
            fold_of[i] = fold.name
        fold_scores = stored["scores"]
        folds.append({"fold": fold.name, **fold_scores})
        emit({"kind": "fold", "evaluation": job.evaluation, "model": job.model, "seed": job.seed, "fold": fold.name,
              "macro_f1": fold_scores["macro_f1"], "train_s": fit_s})
    table = data.table
    gold = table["label"].astype(str).tolist()
    labels = sorted(classes | set(gold))
    targets = table["target"].tolist() if "target" in table.columns else None
    metrics = score(gold, predicted, labels, polar=polar, targets=targets, n_resamples=scoring["bootstrap"], seed=0)
    if scoring["bootstrap"] and scoring["confidence"] != 0.95:
        from ..metrics import bootstrap_ci

        metrics["macro_f1_ci"] = list(bootstrap_ci(gold, predicted, labels, n_resamples=scoring["bootstrap"],
                                                   confidence=scoring["confidence"], seed=0))
    if "article_id" in table.columns and table["article_id"].notna().any():
        metrics["per_article"] = score(gold, predicted, labels, polar=polar, targets=table["article_id"].tolist(),
                                       n_resamples=0)["per_target"]
    if all(p is not None for p in probabilities):  # pooled over folds: calibration on comments no model trained on
        from ..calibration import confidence_cells, confidence_summary

        matrix = np.array([[p.get(label, 0.0) for label in labels] for p in probabilities], dtype=np.float64)
        gold_index = np.array([labels.index(label) for label in gold], dtype=int)
        metrics["confidence"] = confidence_summary(confidence_cells(matrix.reshape(n, len(labels)), gold_index))
    if data.spec["protocol"] != "fixed":
        metrics["folds"] = folds
        fold_f1 = [f["macro_f1"] for f in folds]
        metrics["fold_macro_f1"] = {"mean": float(np.mean(fold_f1)), "std": _std(fold_f1)}
    _write_predictions(staging / "predictions" / job.evaluation / job.model / f"seed-{job.seed}.jsonl",
                       table, predicted, probabilities, fold_of, annotations)
    timing = {"train_s": round(train_s, 3), "predict_s": round(predict_s, 4), "rows": n,
              "rows_per_s": round(n / predict_s, 1) if predict_s > 0 else None, "folds": len(folds)}
    if reused:
        timing["reused_members"] = reused  # train_s includes their training, done once for the other job
    return {"metrics": metrics, "timing": timing, "predicted": predicted}


def _run_few_shot_job(job: Job, config: dict[str, Any], data: EvaluationData, staging: Path,
                      annotations: pd.DataFrame | None, progress: bool, emit: Callable,
                      fitted_models: FittedModels | None = None,
                      checkpoints: Checkpoints | None = None) -> dict[str, Any]:
    """One model and seed under the few-shot protocol: for each held-out group a base model (shared
    by the groups when it learns from the train file), then for each number of shots the base
    adapted on that many comments of the group (with the model's ``adapt`` settings, else its
    family's defaults), all scored on the same remaining comments. An ensemble's base takes the
    members the job's other models have already trained on the same data (:class:`FittedModels`)."""
    from ..data import Dataset
    from ..evaluation import evaluate_model
    from ..training import model_frame
    from .protocols import draw_shots

    preset, params = model_params(config, job.model)
    settings = adapt_params(config, job.model)
    polar = config["scoring"]["polar"] or None
    shots = data.spec["shots"]
    estimator_params = dict(params)
    if "seed" in _known_params(preset):
        estimator_params["seed"] = job.seed
    bases: dict[int, Any] = {}
    groups: dict[str, Any] = {}
    train_s = adapt_s = predict_s = 0.0
    rows = reused = 0
    fitted_models = fitted_models or FittedModels()
    fitted_models.scope(job.evaluation, job.seed)
    evaluation_print = _evaluation_print(config, data)
    for group in data.few_shot_groups():
        print_ = fingerprint(kind="few-shot", evaluation=evaluation_print, preset=preset, params=estimator_params,
                             adapt=settings, group=group.name, ids=_ids_print(group.train, group.dev, group.heldout))
        stored = checkpoints.load(job.evaluation, job.model, job.seed, group.name, print_) if checkpoints else None
        if stored is not None:
            groups[group.name] = stored["scores"]
            train_s, adapt_s, predict_s = train_s + stored["train_s"], adapt_s + stored["adapt_s"], \
                predict_s + stored["predict_s"]
            rows, reused = rows + stored["rows"], reused + stored["reused"]
            emit({"kind": "fold", "evaluation": job.evaluation, "model": job.model, "seed": job.seed,
                  "fold": group.name, "macro_f1": stored["scores"]["macro_f1"][str(shots[-1])], "train_s": train_s})
            continue
        before = {"train_s": train_s, "adapt_s": adapt_s, "predict_s": predict_s, "rows": rows, "reused": reused}
        key = id(group.train)
        if key not in bases:
            dataset = Dataset(train=group.train, dev=group.dev, source=Path(data.spec["data"]))
            base_name = "base" if data.spec["base"] == "train-file" else f"base-{group.name}"
            fitted, fit_s, taken = fitted_models.fit(base_name, dataset, preset, estimator_params, None, progress,
                                                     whole=True)
            bases[key] = fitted.model
            train_s += fit_s
            reused += taken
        base = bases[key]
        pool, evaluation = draw_shots(group.heldout, shots, job.seed, group.name)
        test = group.heldout.iloc[evaluation]
        scores: dict[str, Any] = {"n_eval": int(len(test)),
                                  "pool": {str(k): int(v) for k, v in
                                           group.heldout["label"].iloc[pool].value_counts().sort_index().items()},
                                  "macro_f1": {}, "accuracy": {}}
        for k in shots:
            model = base
            if k:
                labelled = group.heldout.iloc[pool[:k]]
                start = time.perf_counter()
                model = base.adapt(model_frame(labelled, *data.context), labelled["label"].astype(str).tolist(),
                                   **settings)
                adapt_s += time.perf_counter() - start
            start = time.perf_counter()
            result = evaluate_model(model, test, polar=polar, context=data.context, n_resamples=0)
            predict_s += time.perf_counter() - start
            rows += len(test)
            scores["macro_f1"][str(k)] = result["macro_f1"]
            scores["accuracy"][str(k)] = result["accuracy"]
        groups[group.name] = scores
        if checkpoints is not None:
            spent = {"train_s": train_s, "adapt_s": adapt_s, "predict_s": predict_s, "rows": rows, "reused": reused}
            checkpoints.save(job.evaluation, job.model, job.seed, group.name, print_,
                             {"scores": scores, **{k: spent[k] - before[k] for k in spent}})
        emit({"kind": "fold", "evaluation": job.evaluation, "model": job.model, "seed": job.seed, "fold": group.name,
              "macro_f1": scores["macro_f1"][str(shots[-1])], "train_s": train_s})
    curve = {str(k): float(np.mean([g["macro_f1"][str(k)] for g in groups.values()])) for k in shots}
    metrics = {"shots": shots, "macro_f1": curve, "groups": groups}
    timing = {"train_s": round(train_s, 3), "adapt_s": round(adapt_s, 3), "predict_s": round(predict_s, 4),
              "rows": rows, "rows_per_s": round(rows / predict_s, 1) if predict_s > 0 else None,
              "folds": len(groups)}
    if reused:
        timing["reused_members"] = reused
    return {"metrics": metrics, "timing": timing, "predicted": None, "headline": curve[str(shots[-1])]}


def summarize_curve(seeds: dict[str, dict[str, Any]], scoring: dict[str, Any]) -> dict[str, Any]:
    """The few-shot learning curve over seeds and held-out groups: per number of shots the mean
    macro-F1 over every (group, seed), its sample std, and a confidence band.

    The band is a t-interval (level ``scoring.confidence``) of the mean over groups of their
    seed-averaged scores: groups (articles) are the independent units, seeds of one group are not.
    With a single group it is taken over seeds; with a single score there is none.

    >>> seeds = {"0": {"shots": [0, 8], "groups": {"a": {"macro_f1": {"0": 0.5, "8": 0.7}},
    ...                                           "b": {"macro_f1": {"0": 0.7, "8": 0.9}}}}}
    >>> curve = summarize_curve(seeds, {"confidence": 0.95})
    >>> curve["shots"], [round(p["mean"], 2) for p in curve["points"]]
    ([0, 8], [0.6, 0.8])
    """
    from scipy import stats

    runs = list(seeds.values())
    shots = runs[0]["shots"]
    groups = sorted(runs[0]["groups"])
    points = []
    per_group: dict[str, dict[str, float]] = {g: {} for g in groups}
    for k in shots:
        cells = np.array([[r["groups"][g]["macro_f1"][str(k)] for r in runs] for g in groups])  # groups x seeds
        units = cells.mean(axis=1) if len(groups) > 1 else cells[0]
        mean = float(cells.mean())
        if len(units) > 1:
            half = float(stats.t.ppf(0.5 + scoring["confidence"] / 2, len(units) - 1) * np.std(units, ddof=1)
                         / np.sqrt(len(units)))
            band = [float(units.mean() - half), float(units.mean() + half)]
        else:
            band = None
        points.append({"shots": k, "mean": mean, "std": _std(cells.ravel().tolist()), "band": band,
                       "cells": int(cells.size)})
        for g, row in zip(groups, cells):
            per_group[g][str(k)] = float(row.mean())
    return {"seeds": len(runs), "groups": len(groups), "shots": shots, "points": points,
            "band_over": "groups" if len(groups) > 1 else "seeds", "per_group": per_group}


def _known_params(preset: str) -> dict[str, Any]:
    from ..models import PRESETS, family_class

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
    from ..data import read_table

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
    from ..metrics import bootstrap_ci

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
