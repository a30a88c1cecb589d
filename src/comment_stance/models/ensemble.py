"""The ensemble family: the weighted mean of several models' calibrated probabilities.

Each member is an ordinary model of another family, fitted on the same comments (a member that
uses a dev split gets it), and saved as a model folder of its own inside the ensemble's
``weights/members/`` folder, so that the ensemble folder stays self-describing and loads with the
same safety rules as any other. The preset ``ensemble`` averages the TF-IDF SVM and the
fine-tuned transformer with equal weights: their errors differ (character n-grams against a
sentence encoder), and on the unseen-article split the mean scored 0.750 macro-F1 against 0.699
for the transformer and 0.672 for the SVM alone (three seeds, experiments/results/full-study).

A member can also be a seed bag (``bag={"transformer-mpnet": 3}``): trained that many times with
different seeds and averaged, so that one model no longer depends on one seed's luck
(experiments/mpnet-bag.toml measures it). Its trainings are saved as members of their own.

Averaging calibrated members leaves the mean under-confident (each member is confident where the
other is not, so the mean rarely is): ``calibrate`` (on by default) fits one temperature on the
log of the mean over the dev split, as the transformer does on its logits. It sharpens or
softens, never changes which label wins.

Scoring costs the sum of the members' costs, so the ensemble is an accurate preset, not the
fast one. Its gain is measured on our corpus; on ARC's reader comments it scored below its
transformer member (0.560 against 0.571, ``docs/transformer.md``), and with the stronger
all-mpnet-base-v2 backbone (``transformer-mpnet``) the transformer alone scores higher than the
mean with the SVM (0.821 against 0.815 on unseen-article, seed 0).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from ..calibration import fit_temperature, softmax
from ..errors import ModelError
from .base import StanceModel, path_in_folder
from .transformer import AdaptMethod

MEMBERS_DIR = "weights/members"
#: the families whose members adapt when ``EnsembleModel.adapt`` is not told which: the TF-IDF
#: family gains from a few labels of a new pact, while the transformer's continued fine-tuning
#: loses accuracy there (docs/few-shot.md: bench/bench_adapt.py on the unseen-article split's
#: three test articles and on nine leave-one-article-out articles)
ADAPT_BY_DEFAULT = ("tfidf",)
#: the transformer member of the preset trains as in experiments/baseline.toml
DEFAULT_MEMBER_PARAMS: dict[str, dict[str, Any]] = {"transformer": {"epochs": 3, "patience": 2}}
#: settings that change how a model runs, not what it learned; passed on to members that have them
RUNTIME = ("threads", "quantize", "inference_batch_size")
#: the i-th training of a bagged member gets the seed ``seed + i * BAG_SEED_STRIDE``: its first
#: training is the member trained alone with the ensemble's seed (so an experiment reuses it), and
#: the bags of seeds 0, 1, 2... share no training while seeds stay below the stride
BAG_SEED_STRIDE = 1000
#: probabilities are clipped to this before their log is taken for the temperature (a member may
#: give a label exactly 0)
PROBA_FLOOR = 1e-12


class EnsembleModel(StanceModel):
    """Weighted mean of the calibrated probabilities of ``members`` (preset names).

    - ``members``: preset names, e.g. ``["tfidf-svm", "transformer"]``;
    - ``weights``: one non-negative weight per member (``None``: equal), normalised to sum 1;
    - ``member_params``: hyper-parameters per member preset, e.g. ``{"transformer": {"epochs": 3}}``;
    - ``bag``: trainings per member preset, e.g. ``{"transformer-mpnet": 3}``: that member is the
      mean of three trainings that differ only in their seed (``seed``, ``seed + 1000``,
      ``seed + 2000``), each taking a third of the member's weight (a seed bag: as many times the
      training and scoring); members not named train once;
    - ``seed``: passed to every member that has one;
    - ``calibrate``: fit one temperature on the log of the weighted mean over the dev split (when
      :meth:`fit` gets one), so that the ensemble's confidence matches its accuracy; otherwise
      (and for folders saved before it existed) the temperature is 1, the plain weighted mean;
    - ``threads``, ``quantize``, ``inference_batch_size``: runtime settings passed to the members
      that have them (``None``: the member's own).
    """

    family: ClassVar[str] = "ensemble"
    uses_dev: ClassVar[bool] = True
    uses_progress: ClassVar[bool] = True
    #: ``(preset, params) -> (fitted model, seconds) or None``: a member fitted earlier on the same
    #: comments with the same hyper-parameters, which :meth:`fit` takes instead of training it
    #: again (the experiment runner sets it; see :meth:`reuse`)
    fitted_lookup: Callable[[str, dict[str, Any]], tuple[StanceModel, float] | None] | None = None

    def __init__(self, members: Sequence[str] = ("tfidf-svm", "transformer"), weights: Sequence[float] | None = None,
                 member_params: dict[str, dict[str, Any]] | None = None, bag: dict[str, int] | None = None,
                 seed: int = 0, calibrate: bool = True, threads: int | None = None, quantize: str | None = None,
                 inference_batch_size: int | None = None):
        self.members = members
        self.weights = weights
        self.member_params = member_params
        self.bag = bag
        self.seed = seed
        self.calibrate = calibrate
        self.threads = threads
        self.quantize = quantize
        self.inference_batch_size = inference_batch_size

    @staticmethod
    def check_count(n: int, weights: Sequence[float] | None = None) -> None:
        """Refuse fewer than two models to combine, or a number of weights that does not match."""
        if n < 2:
            raise ModelError(f"{n} model given to combine", "give two or more fitted models or model folders")
        if weights is not None and len(weights) != n:
            raise ModelError(f"{len(weights)} weights for {n} models", "give one weight per model, in order")

    @classmethod
    def from_models(cls, models: Sequence[StanceModel], weights: Sequence[float] | None = None,
                    where: Sequence[str] | None = None) -> "EnsembleModel":
        """An ensemble of models that are already fitted, without training anything: e.g. one
        preset trained with three seeds (a seed ensemble), or a TF-IDF model and a transformer
        trained apart. Every model must know the same labels; an ensemble is not taken as a
        member (combine its members instead). Each member is named by the preset it was trained
        from (:func:`preset_of`); fitting the returned ensemble again would train those presets
        anew, so the models given are what makes it what it is. ``where`` names the models in
        error messages (e.g. their folders; default "model 1", "model 2"...)."""
        models = list(models)
        cls.check_count(len(models), weights)
        where = list(where) if where is not None else [f"model {i + 1}" for i in range(len(models))]
        for place, model in zip(where, models):
            if not isinstance(model, StanceModel):
                raise ModelError(f"{place} to combine is a {type(model).__name__}, not a fitted model",
                                 "give fitted models or model folders")
            model._check_fitted()
            if model.family == cls.family:
                raise ModelError(f"{place} is itself an ensemble",
                                 "combine its members (weights/members/ in its folder) instead")
            if [str(c) for c in model.classes_] != [str(c) for c in models[0].classes_]:
                raise ModelError(f"{place} knows the labels {', '.join(map(str, model.classes_))}, but {where[0]} "
                                 f"knows {', '.join(map(str, models[0].classes_))}",
                                 "combine models trained on the same labels")
        names = [preset_of(model) for model in models]
        ensemble = cls(members=names, weights=None if weights is None else list(weights))
        ensemble._normalised_weights(len(models))
        ensemble._set_members(models)
        return ensemble

    # -- hyper-parameters ------------------------------------------------------------------
    def _member_names(self) -> list[str]:
        from . import PRESETS

        names = list(self.members) if isinstance(self.members, (list, tuple)) else None
        if not names:
            raise ModelError(f"members={self.members!r} is not usable", "give a list of model presets, e.g. "
                             "[\"tfidf-svm\", \"transformer\"]")
        for name in names:
            if name not in PRESETS or PRESETS[name][0] == self.family:
                choices = ", ".join(p for p, (f, _) in PRESETS.items() if f != self.family)
                raise ModelError(f"ensemble member '{name}' is not a model preset", f"choose from: {choices}")
        return names

    def _normalised_weights(self, n: int) -> np.ndarray:
        if self.weights is None:
            return np.full(n, 1.0 / n)
        weights = np.asarray(list(self.weights), dtype=float) if isinstance(self.weights, (list, tuple)) else None
        if weights is None or weights.shape != (n,) or not np.all(np.isfinite(weights)) or (weights < 0).any() \
                or weights.sum() <= 0:
            raise ModelError(f"weights={self.weights!r} does not fit {n} members",
                             f"give {n} non-negative numbers, not all zero, or leave weights unset")
        return weights / weights.sum()

    def _slots(self) -> list[tuple[str, int, float]]:
        """One ``(preset, bag index, weight)`` per model the ensemble trains and averages, in order:
        a member bagged n times takes n slots, each with 1/n of its weight.

        >>> EnsembleModel(members=["tfidf-svm", "transformer"], bag={"transformer": 2})._slots()
        [('tfidf-svm', 0, 0.5), ('transformer', 0, 0.25), ('transformer', 1, 0.25)]
        """
        names = self._member_names()
        weights = self._normalised_weights(len(names))
        bag = self.bag if self.bag is not None else {}
        if not isinstance(bag, dict):
            raise ModelError(f"bag={self.bag!r} is not usable", "give a table of trainings per member preset, "
                             "e.g. {transformer-mpnet = 3}")
        unknown = sorted(set(bag) - set(names))
        if unknown:
            raise ModelError(f"bag names '{unknown[0]}', which is not a member", f"members: {', '.join(names)}")
        for name, n in bag.items():
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ModelError(f"bag gives '{name}' {n!r} trainings", "give a whole number, 1 or more")
        return [(name, i, float(w) / bag.get(name, 1)) for name, w in zip(names, weights)
                for i in range(bag.get(name, 1))]

    def _make_member(self, name: str, index: int = 0) -> StanceModel:
        """Member ``name`` unfitted, with its settings; ``index`` is its place in a bag (the seed
        moves by ``index * BAG_SEED_STRIDE``)."""
        from . import make_model

        params = {**DEFAULT_MEMBER_PARAMS.get(name, {}), **((self.member_params or {}).get(name) or {})}
        member = make_model(name, **params)
        known = member.get_params(deep=False)
        settings = {k: getattr(self, k) for k in ("seed", *RUNTIME) if k in known and getattr(self, k) is not None}
        if "seed" in known and "seed" in params:
            settings.pop("seed")  # a seed given for this member wins
        if index:
            if "seed" not in known:
                raise ModelError(f"bag trains '{name}' more than once, but it has no seed, so every training is the "
                                 "same", f"leave '{name}' out of bag")
            settings["seed"] = int(settings.get("seed", known["seed"])) + index * BAG_SEED_STRIDE
        return member.set_params(**settings)

    # -- the estimator contract ------------------------------------------------------------
    def fit(self, X, y, dev: tuple[Any, Sequence[Any]] | None = None, progress: bool = False) -> "EnsembleModel":
        """Fit every member on ``X``, ``y`` (``dev`` goes to the members that use one), then the
        temperature on ``dev`` (with ``calibrate``)."""
        slots = self._slots()
        names = self._member_names()
        if self.member_params is not None and not isinstance(self.member_params, dict):
            raise ModelError(f"member_params={self.member_params!r} is not usable",
                             "give a table of hyper-parameters per member preset, e.g. {transformer = {epochs = 3}}")
        unknown = sorted(set(self.member_params or {}) - set(names))
        if unknown:
            raise ModelError(f"member_params names '{unknown[0]}', which is not a member",
                             f"members: {', '.join(names)}")
        # hyper-parameters checked before any work
        members = [(name, self._make_member(name, index)) for name, index, _ in slots]
        labels = self._labels(y)
        fitted, seconds, reused = [], [], []
        for name, member in members:
            found = self.fitted_lookup(name, member.get_params(deep=False)) if self.fitted_lookup else None
            if found is not None:
                fitted.append(found[0])
                seconds.append(float(found[1]))
                reused.append(True)
                continue
            kwargs: dict[str, Any] = {}
            if dev is not None and getattr(member, "uses_dev", False):
                kwargs["dev"] = dev
            if progress and getattr(member, "uses_progress", False):
                kwargs["progress"] = True
            start = time.perf_counter()
            fitted.append(member.fit(X, labels, **kwargs))
            seconds.append(time.perf_counter() - start)
            reused.append(False)
        self._set_members(fitted)
        if self.calibrate and dev is not None:
            self.recalibrate(*dev)
        self.member_fit_s_ = seconds
        self.reused_members_ = reused
        return self

    def reuse(self, lookup: Callable[[str, dict[str, Any]], tuple[StanceModel, float] | None] | None
              ) -> "EnsembleModel":
        """Take members from ``lookup`` instead of training them again.

        ``lookup(preset, params)`` gets each member's preset name and full hyper-parameters
        (``get_params()``, seed included) and returns ``(fitted model, training seconds)`` for a
        model fitted on the very comments (and dev split) this ensemble is about to be fitted on,
        or ``None``. The caller vouches for the data being the same; training is deterministic
        for a given seed, so a reused member is the model that training would have produced.
        """
        self.fitted_lookup = lookup
        return self

    def _set_members(self, members: list[StanceModel]) -> None:
        classes = [str(c) for c in members[0].classes_]
        for member in members[1:]:
            if [str(c) for c in member.classes_] != classes:
                raise ModelError("the ensemble's members know different labels",
                                 "train every member on the same labelled comments")
        self.members_ = members
        self.classes_ = np.asarray(classes, dtype=object)
        self.temperature_ = 1.0

    def recalibrate(self, X, y: Sequence[Any]) -> "EnsembleModel":
        """Fit the temperature of the weighted mean on labelled comments ``X``, ``y`` (a dev split
        the members were not trained on); comments whose label the ensemble does not know are left
        out, and with none left the temperature is 1."""
        self._check_fitted()
        index = {str(c): i for i, c in enumerate(self.classes_)}
        labels = [str(v) for v in y]
        known = np.asarray([v in index for v in labels], dtype=bool)
        self.temperature_ = 1.0
        if known.any():
            mean = self._weighted_mean(X)[known]
            self.temperature_ = fit_temperature(np.log(np.maximum(mean, PROBA_FLOOR)),
                                                np.asarray([index[v] for v in labels if v in index]))
        return self

    def predict_proba(self, X) -> np.ndarray:
        """The weighted mean of the members' calibrated probabilities, columns in ``classes_``
        order, recalibrated with ``temperature_`` (``softmax(log(mean) / T)``)."""
        self._check_fitted()
        mean = self._weighted_mean(X)
        if self.temperature_ == 1.0:
            return mean
        return softmax(np.log(np.maximum(mean, PROBA_FLOOR)), self.temperature_)

    def _weighted_mean(self, X) -> np.ndarray:
        weights = [weight for _, _, weight in self._slots()]
        total = None
        for weight, member in zip(weights, self.members_):
            proba = np.asarray(member.predict_proba(X), dtype=np.float64)
            total = weight * proba if total is None else total + weight * proba
        return total

    @staticmethod
    def adapting_members(members: Sequence[str] | str, names: Sequence[str]) -> list[str]:
        """The members that ``adapt(members=...)`` adapts, out of the ensemble's member ``names``
        (``"all"``: every one); ``ModelError`` for a name that is not a member, or for none."""
        if members == "all" or members == ["all"]:
            return list(names)
        chosen = [members] if isinstance(members, str) else list(members)
        for name in chosen:
            if name not in names:
                raise ModelError(f"members names '{name}', which is not a member of this ensemble",
                                 f"members: all, or one or more of: {', '.join(names)}")
        if not chosen:
            raise ModelError("members names no member to adapt", f"name one or more of: {', '.join(names)}, or all")
        return chosen

    def adapt_plan(self, members: Sequence[str] | str | None, settings: dict[str, Any] | Sequence[str],
                   member_models: Sequence[StanceModel] | None = None) -> tuple[list[str], list[str]]:
        """Which members ``adapt(members=..., **settings)`` adapts, and which of ``settings`` no
        adapting member takes (``adapt`` refuses those). By default (``members=None``) the members
        of the families in :data:`ADAPT_BY_DEFAULT` adapt, or every member when there is none.
        Read from ``member_models`` (the fitted members) or, before fitting, from the presets, so
        that an experiment config is checked before anything trains. ``settings`` maps names to
        values (a list of names stands for settings without values), since a value may choose
        what else a member takes (a transformer's ``method``: :meth:`~StanceModel.adapt_takes`).

        >>> EnsembleModel(members=["tfidf-svm", "transformer"]).adapt_plan(None, ["C", "lr"])
        (['tfidf-svm'], ['lr'])
        """
        slots = self._slots()
        names = [name for name, _, _ in slots]
        models = list(member_models) if member_models is not None else [self._make_member(n, i) for n, i, _ in slots]
        if members is None:
            chosen = [n for n, m in zip(names, models) if m.family in ADAPT_BY_DEFAULT] or names
        else:
            chosen = self.adapting_members(members, names)
        settings = dict(settings) if isinstance(settings, dict) else dict.fromkeys(settings)
        taken = {k for name, model in zip(names, models) if name in chosen for k in model.adapt_takes(settings)}
        return chosen, sorted(set(settings) - taken - {"dev", "progress"})

    def adapt(self, X, y, *, C: float | None = None, method: AdaptMethod | None = None,
              lr: float | None = None, epochs: int | None = None, batch_size: int | None = None, warmup_ratio: float | None = None,
              dev: tuple[Any, Sequence[Any]] | None = None, seed: int | None = None,
              members: Sequence[str] | str | None = None, progress: bool = False) -> "EnsembleModel":
        """A copy whose members are adapted to a few labelled comments of a new target, each the
        way its family adapts (TF-IDF: a penalty toward the source weights, ``C``; transformer:
        continued fine-tuning, ``lr``, ``epochs``, ``batch_size``, ``warmup_ratio``, ``seed``, or
        with ``method="head"`` its last layer only, with the TF-IDF family's penalty and ``C``);
        this model is not changed. ``members`` names the members (presets) that adapt, or
        ``"all"``; the others are kept as they are. By default (``None``) the members of the
        families in :data:`ADAPT_BY_DEFAULT` (TF-IDF) adapt and the others are kept, since a
        transformer fine-tuned further on a few labels was measured to get worse; an ensemble with
        no TF-IDF member adapts every member. A setting goes to every adapting member whose family
        has it, and members keep their own defaults for the rest; a ``seed`` moves by
        ``BAG_SEED_STRIDE`` for each earlier member of the same preset, so that the trainings of a
        bag (or seeds combined) do not adapt alike. The weights and the temperature stay as they
        are."""
        import copy

        self._check_fitted()
        names = [name for name, _, _ in self._slots()]
        given = {"C": C, "method": method, "lr": lr, "epochs": epochs, "batch_size": batch_size,
                 "warmup_ratio": warmup_ratio,
                 "dev": dev, "seed": seed, "progress": progress or None}
        given = {k: v for k, v in given.items() if v is not None}
        chosen, unused = self.adapt_plan(members, given, self.members_)
        if unused:  # refused before any member adapts
            kept = [name for name in names if name not in chosen]
            raise ModelError(f"no adapting member of this ensemble adapts with '{unused[0]}'",
                             f"adapting members: {', '.join(chosen)}"
                             + (f"; kept: {', '.join(kept)} (members=all adapts every member)" if kept else ""))
        adapted_members, records = [], []
        for i, (name, member) in enumerate(zip(names, self.members_)):
            if name not in chosen:
                adapted_members.append(member)
                records.append({"method": "kept"})
                continue
            accepted = member.adapt_takes(given)
            settings = {k: v for k, v in given.items() if k in accepted}
            if "seed" in settings:  # trainings of one preset (a bag, or combined seeds) adapt with seeds apart
                settings["seed"] = int(settings["seed"]) + names[:i].count(name) * BAG_SEED_STRIDE
            adapted_members.append(member.adapt(X, y, **settings))
            records.append(getattr(adapted_members[-1], "adaptation_", {}))
        adapted = copy.copy(self)
        adapted.fitted_lookup = None
        adapted._set_members(adapted_members)
        adapted.temperature_ = self.temperature_
        adapted.adaptation_ = {"method": "members", "members": records}
        return adapted

    # -- persistence -----------------------------------------------------------------------
    def _save_weights(self, folder: Path) -> dict[str, Any]:
        from ..persist import save_model

        saved = []
        for i, ((name, _, _), member) in enumerate(zip(self._slots(), self.members_)):
            relative = f"{MEMBERS_DIR}/{i}-{name}"
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            save_model(member, folder / relative, name=name)
            saved.append({"preset": name, "path": relative})
        return {"members": saved, "temperature": self.temperature_}

    def _load_weights(self, folder: Path, config: dict[str, Any]) -> None:
        from ..persist import load_model

        entries = config["weights"].get("members") if isinstance(config["weights"], dict) else None
        if not isinstance(entries, list) or not entries:
            raise ModelError(f"{folder / 'config.json'}: the ensemble lists no members", "the model folder is damaged; "
                             "retrain it")
        expected = len(self._slots())
        if len(entries) != expected:
            raise ModelError(f"{folder / 'config.json'}: {len(entries)} member folders for {expected} member "
                             "trainings", "the model folder is damaged; retrain it")
        runtime = {k: getattr(self, k) for k in RUNTIME if getattr(self, k) is not None}
        members = []
        for entry in entries:
            path = path_in_folder(folder, entry.get("path") if isinstance(entry, dict) else None, "member")
            if not (path / "config.json").is_file():
                raise ModelError(f"{folder}: the ensemble member {path} is missing", "copy the whole model folder, "
                                 "or retrain it")
            members.append(load_model(path, **runtime))
        self._set_members(members)
        temperature = config["weights"].get("temperature", 1.0)  # absent: saved before calibrate existed
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
                or not np.isfinite(temperature) or temperature <= 0:
            raise ModelError(f"{folder / 'config.json'}: the ensemble's temperature {temperature!r} is not a "
                             "positive number", "the model folder is damaged; retrain it")
        self.temperature_ = float(temperature)

    def version_info(self) -> dict[str, str]:
        info = super().version_info()
        for member in getattr(self, "members_", []):
            info.update(member.version_info())
        return info


def preset_of(model: StanceModel) -> str:
    """The preset a fitted model was trained from: the one its folder records, else the preset of
    its family that its hyper-parameters match best (``tfidf-svm`` for an SVM, ``transformer-mpnet``
    for the mpnet backbone, else the family's plain preset)."""
    from . import PRESETS

    recorded = (getattr(model, "config_", None) or {}).get("training", {}).get("preset")
    if isinstance(recorded, str) and recorded in PRESETS and PRESETS[recorded][0] != "ensemble":
        return recorded
    params = model.get_params(deep=False)
    if model.family == "tfidf":
        return "tfidf-svm" if params.get("classifier") == "svm" else "tfidf-logreg"
    if model.family == "transformer":
        base = str(params.get("base_model") or "")
        return "transformer-mpnet" if base.rstrip("/").endswith(PRESETS["transformer-mpnet"][1]["base_model"]) \
            else "transformer"
    if model.family in PRESETS and PRESETS[model.family][0] == model.family:
        return model.family
    raise ModelError(f"a '{model.family}' model cannot be an ensemble member", "combine models of the families: "
                     + ", ".join(sorted({f for f, _ in PRESETS.values() if f != "ensemble"})))

