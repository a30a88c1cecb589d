"""Training a model from a dataset and saving it as a model folder."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .data import Columns, Dataset, load_dataset, table_sha256, with_parent_text
from .errors import ModelError
from .evaluation import evaluate_model
from .models import PRESETS, make_model
from .models.base import StanceModel
from .persist import check_destination, save_model


@dataclass
class TrainResult:
    """What :func:`train` returns: the fitted model, where it was saved, and its scores."""

    model: StanceModel
    folder: Path | None
    metrics: dict[str, Any]
    time_s: float
    #: flag precision/recall of the off-topic gate per split, when one was trained
    off_topic: dict[str, Any] | None = None
    #: what the teacher labelled, when the model was distilled (``training.distilled_from`` of its folder)
    distilled: dict[str, Any] | None = None


def model_frame(table: pd.DataFrame, *context: pd.DataFrame) -> pd.DataFrame:
    """The columns a model reads (text, target, parent_text), parents looked up in ``context`` too."""
    return with_parent_text(table, *context)


def train(
    data: str | Path | Dataset | None = None,
    model: str | StanceModel | None = None,
    out: str | Path | None = None,
    *,
    params: dict[str, Any] | None = None,
    per_target: bool = False,
    columns: Columns | None = None,
    polar: list[str] | None = None,
    overwrite: bool = False,
    evaluate_on: tuple[str, ...] = ("dev", "test"),
    progress: bool = False,
    off_topic: str | Path | Dataset | None = None,
    figures: bool = False,
    init: str | Path | StanceModel | None = None,
    preset: str | None = None,
    teacher: str | Path | StanceModel | None = None,
    unlabelled: str | Path | pd.DataFrame | None = None,
    teacher_min_confidence: float = 0.0,
) -> TrainResult:
    """Fit a model on the ``train`` split of ``data`` and, when ``out`` is given, save it.

    ``model`` is a preset name (``majority``, ``tfidf-logreg`` (the default), ``tfidf-svm``,
    ``transformer``) or an unfitted model. The model is scored on each split named in ``evaluate_on`` that the dataset
    has; the scores go into the folder's ``metrics.json`` and model card, and with ``figures`` a
    confusion matrix per split into ``confusion-<split>.png``. ``out`` is checked before training
    (an existing folder is replaced only with ``overwrite``; see
    :func:`comment_stance.persist.check_destination`).

    ``off_topic`` (a folder or file of comments labelled ``off_topic``) also trains an off-topic
    gate (:mod:`comment_stance.offtopic`) on the train split's comments against the off-topic
    ones, with its threshold chosen on the dev splits; it is saved inside the model folder and
    flags off-topic comments for review without changing any stance label.

    ``preset`` names the preset an unfitted ``model`` was made from, for the saved folder's record.

    ``init`` (a model folder, or a fitted model) adapts that model to ``data`` instead of training
    a new one: typically a few dozen labelled comments of a new pact. The folder's family decides
    how (:meth:`TfidfModel.adapt <comment_stance.models.baselines.TfidfModel.adapt>`: a penalty
    toward the source weights; :meth:`TransformerModel.adapt
    <comment_stance.models.transformer.TransformerModel.adapt>`: continued fine-tuning with a small
    learning rate), ``params`` are its adaptation settings (``C``; ``lr``, ``epochs``,
    ``batch_size``), ``model`` must be left out, and the new folder's ``config.json`` records what it
    was adapted from (``training.adapted_from``) and the hash of the adaptation rows.

    ``teacher`` (a model folder or a fitted model) and ``unlabelled`` (a file of comments, or a
    table) distil the teacher into the new model (:mod:`comment_stance.distillation`): the teacher
    labels the unlabelled comments (those with a top probability of at least
    ``teacher_min_confidence``; a label column there is not read), and the model is fitted on the
    train split plus those comments. Unlabelled comments that the dataset already labels (same text
    and target, any split) are left out, so that dev and test scores stay honest. The folder's
    ``config.json`` records the teacher and the counts (``training.distilled_from``).

    >>> from comment_stance import train
    >>> result = train("tests/fixtures/tiny", "tfidf-logreg", "my-model")   # or "data/processed/random"
    >>> result.folder.name, sorted(result.metrics), result.metrics["test"]["n"]
    ('my-model', ['dev', 'test'], 9)
    >>> adapted = train("new-pact.jsonl", out="my-model-new-pact", init="my-model")  # doctest: +SKIP
    >>> fast = train(out="svm-distilled", model="tfidf-svm", teacher="mpnet-model",
    ...              unlabelled="new-pact-export.csv")  # doctest: +SKIP
    """
    if out is not None:
        check_destination(out, overwrite=overwrite, kind="model")  # fail before a long training, not after
    if (teacher is None) != (unlabelled is None):
        raise ModelError("a teacher and unlabelled comments go together",
                         "give both --teacher DIR and --unlabelled FILE (the teacher labels the comments)")
    if init is not None:
        if teacher is not None:
            raise ModelError("--teacher cannot be combined with --from",
                             "distil into a new model, or adapt a folder to labelled comments: one at a time")
        return _adapt(data, init, out, model=model, params=params, columns=columns, polar=polar,
                      overwrite=overwrite, evaluate_on=evaluate_on, progress=progress, figures=figures,
                      per_target=per_target, off_topic=off_topic)
    model = "tfidf-logreg" if model is None else model
    dataset = data if isinstance(data, Dataset) else load_dataset(data, columns)
    if isinstance(model, str):
        name = model
        extra = dict(params or {})
        if per_target:
            extra["per_target"] = True
        estimator = make_model(model, **extra)
    else:
        estimator = model
        name = preset or type(model).__name__
        if params:
            estimator.set_params(**params)
        if per_target:
            estimator.set_params(per_target=True)
    train_table = dataset.split("train")
    fit_frame, fit_labels = model_frame(train_table), train_table["label"].tolist()
    distilled = None
    if teacher is not None:
        distilled = _teacher_rows(teacher, unlabelled, dataset, columns, teacher_min_confidence, progress)
        rows = distilled.pop("rows")
        fit_frame = pd.concat([fit_frame, rows.drop(columns=["label", "teacher_confidence"])], ignore_index=True)
        fit_labels = fit_labels + rows["label"].tolist()
    fit_kwargs: dict[str, Any] = {}
    if dataset.dev is not None and getattr(estimator, "uses_dev", False):
        fit_kwargs["dev"] = (model_frame(dataset.dev, train_table), dataset.dev["label"].tolist())
    if progress and getattr(estimator, "uses_progress", False):
        fit_kwargs["progress"] = True
    start = time.perf_counter()
    estimator.fit(fit_frame, fit_labels, **fit_kwargs)
    elapsed = time.perf_counter() - start
    estimator.trained_targets_ = sorted(set(_targets(train_table)) | set(_targets(fit_frame)))
    gate_metrics = _train_gate(estimator, dataset, off_topic, columns, evaluate_on) if off_topic is not None else None
    metrics = _scores(estimator, dataset, train_table, evaluate_on, polar)
    folder = None
    if out is not None:
        training = {
            **_data_facts(dataset, train_table, elapsed),
            "preset": name if name in PRESETS else None,
            "targets": estimator.trained_targets_,
            **({"distilled_from": distilled} if distilled is not None else {}),
        }
        extras = _confusion_figures(metrics, name) if figures and metrics else None
        folder = save_model(estimator, out, name=name, training=training, metrics=metrics, overwrite=overwrite,
                            extras=extras)
    return TrainResult(estimator, folder, metrics, elapsed, gate_metrics, distilled)


def _teacher_rows(teacher, unlabelled, dataset: Dataset, columns: Columns | None,
                  min_confidence: float, progress: bool = False) -> dict[str, Any]:
    """The teacher's labels for the unlabelled comments, as training rows (``rows``) and the record of them."""
    from .data import read_comments
    from .distillation import check_teacher_labels, label_with
    from .errors import DataError
    from .persist import load_model

    model = teacher if isinstance(teacher, StanceModel) else load_model(teacher)
    model._check_fitted()
    train_table = dataset.split("train")
    check_teacher_labels(model.classes_, train_table["label"],
                         str(dataset.files.get("train", dataset.source or "the training data")))
    if isinstance(unlabelled, pd.DataFrame):
        comments, source = unlabelled, None
    else:
        if Path(unlabelled).is_dir():
            raise DataError(f"{unlabelled}: is a folder; --unlabelled takes one file of comments",
                            "pass a CSV/TSV/JSONL/Parquet file (a sample of the export to score)")
        comments, source = read_comments(unlabelled, columns, require_label=False), str(unlabelled)
    comments = comments.drop(columns=["label"], errors="ignore")
    labelled = {split: getattr(dataset, split) for split in ("train", "dev", "test")}
    made = label_with(model, comments, labelled=labelled, min_confidence=min_confidence,
                      progress=progress and model.family in ("transformer", "ensemble"))
    rows = model_frame(made.table, comments)  # a reply's parent is looked up among the unlabelled comments
    return {"rows": rows, "teacher": _source_record(model, teacher), "unlabelled": source,
            "sha256": table_sha256(rows), **made.record()}


def _adapt(data, init, out, *, model, params, columns, polar, overwrite, evaluate_on, progress, figures,
           per_target, off_topic) -> TrainResult:
    """:func:`train` with ``init``: adapt a fitted model to the train split of ``data`` and save it."""
    from .persist import load_model

    if model is not None:
        raise ModelError("a model and a folder to start from were both given",
                         "leave out --model with --from: the folder decides the model family")
    if per_target or off_topic is not None:
        raise ModelError("--per-target and --off-topic cannot be combined with --from",
                         "the adapted model keeps the source folder's per-target models and off-topic gate")
    source = init if isinstance(init, StanceModel) else load_model(init)
    source._check_fitted()
    source_config = getattr(source, "config_", None) or {}
    dataset = data if isinstance(data, Dataset) else load_dataset(data, columns)
    train_table = dataset.split("train")
    settings = dict(params or {})
    _check_adapt_settings(source, settings)
    if dataset.dev is not None and "dev" in _adapt_settings(source):  # early stopping on the new pact's dev file
        settings["dev"] = (model_frame(dataset.dev, train_table), dataset.dev["label"].astype(str).tolist())
    if progress and getattr(source, "uses_progress", False):
        settings["progress"] = True
    start = time.perf_counter()
    adapted = source.adapt(model_frame(train_table), train_table["label"].tolist(), **settings)
    elapsed = time.perf_counter() - start
    adapted.trained_targets_ = sorted(set(_trained_targets(source)) | set(_targets(train_table)))
    metrics = _scores(adapted, dataset, train_table, evaluate_on, polar)
    folder = None
    if out is not None:
        source_training = source_config.get("training", {})
        name = f"{source_config.get('name', source.family)} (adapted)"
        training = {
            **_data_facts(dataset, train_table, elapsed),
            "preset": source_training.get("preset"),
            "targets": adapted.trained_targets_,
            "adaptation": getattr(adapted, "adaptation_", {}),
            "adapted_from": {
                **_source_record(source, init),
                # a chain of adaptations stays traceable to the first model
                "adapted_from": source_training.get("adapted_from"),
            },
        }
        extras = _confusion_figures(metrics, name) if figures and metrics else None
        folder = save_model(adapted, out, name=name, training=training, metrics=metrics, overwrite=overwrite,
                            extras=extras)
    return TrainResult(adapted, folder, metrics, elapsed, None)


def combine(
    models: list[str | Path | StanceModel],
    out: str | Path | None = None,
    *,
    weights: list[float] | None = None,
    data: str | Path | Dataset | None = None,
    columns: Columns | None = None,
    polar: list[str] | None = None,
    overwrite: bool = False,
    evaluate_on: tuple[str, ...] = ("dev", "test"),
    figures: bool = False,
) -> TrainResult:
    """Combine trained models (folders or fitted models) into one ensemble, without training.

    The ensemble scores the weighted mean of the members' calibrated probabilities
    (:meth:`EnsembleModel.from_models <comment_stance.models.ensemble.EnsembleModel.from_models>`):
    the same preset trained with several seeds, or models of different families trained apart.
    With ``data`` it is scored on the dev and test splits, as :func:`train` scores a new model, and
    its temperature is fitted on the dev split first (:meth:`EnsembleModel.recalibrate
    <comment_stance.models.ensemble.EnsembleModel.recalibrate>`; without one it stays 1).
    ``out`` is checked before any model is read, and may not be one of the folders combined. The
    saved folder holds a copy of every member and records where each came from
    (``training.combined_from``); an off-topic gate of a member is carried over (the first one).

    >>> from comment_stance import combine
    >>> result = combine(["models/seed-0", "models/seed-1", "models/seed-2"], "models/seeds",
    ...                  data="data/processed/unseen-article")  # doctest: +SKIP
    """
    from .models.ensemble import EnsembleModel
    from .persist import load_model

    if out is not None:
        for source in models:
            if not isinstance(source, StanceModel) and Path(source).resolve() == Path(out).resolve():
                raise ModelError(f"{out} is one of the model folders to combine",
                                 "write the ensemble to a new folder with --out")
        check_destination(out, overwrite=overwrite, kind="model")
    EnsembleModel.check_count(len(models), weights)  # before any folder is read
    start = time.perf_counter()
    loaded = [source if isinstance(source, StanceModel) else load_model(source) for source in models]
    where = [f"model {i + 1}" if isinstance(source, StanceModel) else str(source) for i, source in enumerate(models)]
    ensemble = EnsembleModel.from_models(loaded, weights=weights, where=where)
    gates = [(i, m.off_topic_) for i, m in enumerate(loaded) if getattr(m, "off_topic_", None) is not None]
    if gates:
        ensemble.off_topic_ = gates[0][1]
    targets = sorted({t for m in loaded for t in _trained_targets(m)})
    ensemble.trained_targets_ = targets
    elapsed = time.perf_counter() - start
    metrics: dict[str, Any] = {}
    if data is not None:
        dataset = data if isinstance(data, Dataset) else load_dataset(data, columns)
        if not any(getattr(dataset, split, None) is not None for split in evaluate_on):
            raise ModelError(f"{dataset.source}: no {' or '.join(evaluate_on)} split to score the ensemble on",
                             "give a dataset folder with dev/test files, or score a file with 'stance evaluate'")
        context = dataset.train if dataset.train is not None else dataset.split(evaluate_on[-1]).iloc[:0]
        if dataset.dev is not None:  # a mean of calibrated models is under-confident
            ensemble.recalibrate(model_frame(dataset.dev, context), dataset.dev["label"].astype(str).tolist())
        metrics = _scores(ensemble, dataset, context, evaluate_on, polar)
    folder = None
    if out is not None:
        sources = []
        for source, model, name in zip(models, loaded, ensemble.members):
            sources.append({**_source_record(model, source), "preset": name,
                            "time_s": ((getattr(model, "config_", None) or {}).get("training") or {}).get("time_s"),
                            "seed": model.get_params(deep=False).get("seed")})
        training = {"preset": None, "targets": targets, "time_s": round(elapsed, 3), "combined_from": sources,
                    **({"off_topic_from": sources[gates[0][0]]["folder"]} if gates else {})}
        name = "ensemble of " + ", ".join(ensemble.members)
        extras = _confusion_figures(metrics, name) if figures and metrics else None
        folder = save_model(ensemble, out, name=name, training=training, metrics=metrics, overwrite=overwrite,
                            extras=extras)
    return TrainResult(ensemble, folder, metrics, elapsed, None)


def _trained_targets(model: StanceModel) -> list[str]:
    """The targets a fitted model learnt from: set on it by :func:`train`, else read from its folder."""
    return list(getattr(model, "trained_targets_", None)
                or (getattr(model, "config_", None) or {}).get("training", {}).get("targets", []))


def _source_record(model: StanceModel, source: Any) -> dict[str, Any]:
    """What a derived folder records of a model it was made from (``source``: its folder, or the model)."""
    config = getattr(model, "config_", None) or {}
    training = config.get("training", {})
    return {"folder": None if isinstance(source, StanceModel) else str(source), "name": config.get("name"),
            "family": model.family, "created_at": config.get("created_at"),
            "comment_stance": config.get("versions", {}).get("comment-stance"),
            **{key: training.get(key) for key in ("data", "rows", "sha256")}}


def _scores(model: StanceModel, dataset: Dataset, train_table: pd.DataFrame, evaluate_on: tuple[str, ...],
            polar: list[str] | None) -> dict[str, Any]:
    """The model's scores on each split named in ``evaluate_on`` that the dataset has."""
    metrics: dict[str, Any] = {}
    for split in evaluate_on:
        frame = getattr(dataset, split, None)
        if frame is not None:
            metrics[split] = evaluate_model(model, frame, polar=polar, context=[train_table])
    return metrics


def _data_facts(dataset: Dataset, train_table: pd.DataFrame, elapsed: float) -> dict[str, Any]:
    """What config.json's ``training`` says of the rows a model was fitted on."""
    source = dataset.files.get("train", dataset.source)
    return {
        "data": str(source) if source else None,
        "rows": int(len(train_table)),
        "label_counts": {str(k): int(v) for k, v in train_table["label"].value_counts().sort_index().items()},
        "sha256": table_sha256(train_table),
        "time_s": round(elapsed, 3),
    }


def _adapt_settings(model: StanceModel) -> list[str]:
    """The keyword settings of ``model.adapt``."""
    import inspect

    return [name for name, p in inspect.signature(model.adapt).parameters.items() if p.kind == p.KEYWORD_ONLY]


def adapt_setting_names(model: StanceModel) -> list[str]:
    """The settings a user can give ``model.adapt`` (``dev`` and ``progress`` are the caller's)."""
    return [name for name in _adapt_settings(model) if name not in ("progress", "dev")]


def adapt_setting_types(model: StanceModel) -> dict[str, type]:
    """``int`` or ``float`` for each numeric setting of ``model.adapt``, read from its annotation
    (``"float | None"`` is a float); settings of other types are left out.

    >>> from comment_stance.models import make_model
    >>> adapt_setting_types(make_model("transformer"))["epochs"], adapt_setting_types(make_model("tfidf-svm"))
    (<class 'int'>, {'C': <class 'float'>})
    """
    import inspect

    types: dict[str, type] = {}
    names = adapt_setting_names(model)
    for name, parameter in inspect.signature(model.adapt).parameters.items():
        words = str(parameter.annotation).replace("|", " ").split()
        if name in names and words:
            if "float" in words:
                types[name] = float
            elif "int" in words:
                types[name] = int
    return types


def adapt_setting_choices(model: StanceModel) -> dict[str, tuple[Any, ...]]:
    """The allowed values of each setting of ``model.adapt`` annotated with ``Literal[...]``.

    >>> from comment_stance.models import make_model
    >>> adapt_setting_choices(make_model("transformer")), adapt_setting_choices(make_model("tfidf-svm"))
    ({'method': ('fine-tune', 'head')}, {})
    """
    import types
    import typing

    hints = typing.get_type_hints(model.adapt)
    choices: dict[str, tuple[Any, ...]] = {}
    for name in adapt_setting_names(model):
        hint = hints.get(name)
        parts = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        for part in parts:
            if typing.get_origin(part) is typing.Literal:
                choices[name] = typing.get_args(part)
    return choices


def adapt_settings_taken(model: StanceModel, settings: dict[str, Any]) -> list[str]:
    """The settings of :func:`adapt_setting_names` that ``model.adapt`` takes along with
    ``settings`` (a transformer's ``method`` chooses what else it takes: :meth:`StanceModel.adapt_takes`).

    >>> from comment_stance.models import make_model
    >>> adapt_settings_taken(make_model("transformer"), {"method": "head"})
    ['method', 'C', 'seed']
    """
    return [k for k in adapt_setting_names(model) if k in model.adapt_takes(settings)]


def _check_adapt_settings(source: StanceModel, settings: dict[str, Any]) -> None:
    every = adapt_setting_names(source)
    accepted = adapt_settings_taken(source, settings)
    unknown = sorted(set(settings) - set(accepted))
    if unknown:
        method = f" with method={settings['method']}" if unknown[0] in every and "method" in settings else ""
        raise ModelError(f"adapting a '{source.family}' model{method} has no setting '{unknown[0]}'",
                         f"settings: {', '.join(accepted) or 'none'}")


def _targets(table: pd.DataFrame) -> list[str]:
    """The targets of the training rows (what :mod:`comment_stance.review` calls known targets)."""
    if "target" not in table.columns:
        return []
    return sorted({str(t) for t in table["target"] if isinstance(t, str) and t})


def _train_gate(estimator: StanceModel, dataset: Dataset, off_topic: Any, columns: Columns | None,
                evaluate_on: tuple[str, ...]) -> dict[str, Any]:
    """Train the off-topic gate, attach it to ``estimator`` and return its scores per split."""
    from .offtopic import attach_gate, evaluate_gate, off_topic_table, train_gate

    off = off_topic_table(off_topic, columns)
    train_table = dataset.split("train")
    gate = train_gate(model_frame(train_table), model_frame(off.train),
                      on_dev=model_frame(dataset.dev, train_table) if dataset.dev is not None else None,
                      off_dev=model_frame(off.dev) if off.dev is not None else None)
    scores = {}
    for split in evaluate_on:
        on, off_split = getattr(dataset, split, None), getattr(off, split, None)
        if on is not None and off_split is not None:
            scores[split] = evaluate_gate(gate, model_frame(on, train_table), model_frame(off_split))
    gate.gate_metrics_ = scores
    attach_gate(estimator, gate)
    return scores


def _confusion_figures(metrics: dict[str, Any], name: str):
    def draw(folder: Path) -> None:
        from .plots import confusion_png

        for split, scores in metrics.items():
            confusion_png(scores["confusion"]["matrix"], scores["confusion"]["labels"],
                          folder / f"confusion-{split}.png", title=f"{name} on {split}")

    return draw
