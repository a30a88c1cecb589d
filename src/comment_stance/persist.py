"""Self-describing model folders.

A model folder holds::

    config.json    family, labels, hyper-parameters, library versions, training-data hash, timing
    metrics.json   the scores measured when the model was trained (dev/test, when available)
    README.md      a model card generated from the two files above
    weights/...    the fitted state, in formats that never execute code when read
                   (skops with an allow-list for scikit-learn, safetensors for transformers)

:func:`load_model` dispatches on ``config.json``'s ``family`` and never unpickles anything.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from datetime import datetime, timezone
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from . import __version__
from .errors import ModelError, OutputError
from .models import family_class
from .models.base import StanceModel

FORMAT_VERSION = 1
CONFIG = "config.json"
METRICS = "metrics.json"
CARD = "README.md"


def save_model(
    model: StanceModel,
    folder: str | Path,
    *,
    name: str | None = None,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` to ``folder`` as a self-describing model folder and return its path.

    The folder is assembled beside its destination and moved into place at the end, so a crash
    never leaves half a model behind. An existing non-empty folder is replaced only with
    ``overwrite=True``.
    """
    model._check_fitted()
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())) and not overwrite:
        raise OutputError(f"{folder}: already exists", "choose another --out or pass --overwrite")
    with staged_folder(folder) as staging:
        weights = model._save_weights(staging)
        config = {
            "format_version": FORMAT_VERSION,
            "family": model.family,
            "name": name or model.family,
            "labels": [str(c) for c in model.classes_],
            "params": _jsonable(model.get_params(deep=False)),
            "weights": weights,
            "training": training or {},
            "versions": {"comment-stance": __version__, "python": platform.python_version(),
                         **model.version_info()},
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        gate = getattr(model, "off_topic_", None)
        if gate is not None:  # the off-topic gate: a model folder of its own inside this one
            from .offtopic import GATE_FOLDER, gate_threshold

            save_model(gate, staging / GATE_FOLDER, name="off-topic gate",
                       training=getattr(gate, "gate_training_", None) or gate.config_.get("training"),
                       metrics=getattr(gate, "gate_metrics_", None))
            config["off_topic"] = {"folder": GATE_FOLDER, "threshold": gate_threshold(gate)}
        (staging / CONFIG).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        (staging / METRICS).write_text(json.dumps(metrics or {}, indent=2, ensure_ascii=False) + "\n")
        (staging / CARD).write_text(model_card(config, metrics or {}))
    return folder


@contextmanager
def staged_folder(folder: Path) -> Iterator[Path]:
    """Build a folder beside its destination and move it into place only when the block succeeds.

    A crash or Ctrl-C inside the block removes the half-built folder and leaves any existing
    ``folder`` untouched; on success an existing ``folder`` is replaced (callers check first
    whether replacing it was asked for).
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the finished folder should not be
        yield staging
        if folder.exists():
            shutil.rmtree(folder) if folder.is_dir() else folder.unlink()
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_metrics(folder: str | Path, metrics: dict[str, Any]) -> None:
    """Replace metrics.json and regenerate the model card (after evaluation on held-out data)."""
    folder = Path(folder)
    config = read_config(folder)
    (folder / METRICS).write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    (folder / CARD).write_text(model_card(config, metrics))


def read_config(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    path = folder / CONFIG
    if not folder.is_dir():
        raise ModelError(f"{folder}: no such model folder", "pass the folder written by 'stance train --out'")
    if not path.is_file():
        raise ModelError(f"{folder}: not a model folder (no {CONFIG})", "pass the folder written by 'stance train --out'")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})", "the model folder is damaged; retrain it") from None
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(f"{path}: model format {version!r}, this version reads {FORMAT_VERSION}",
                         "retrain the model with this version of comment-stance")
    for key in ("family", "labels", "params", "weights"):
        if key not in config:
            raise ModelError(f"{path}: missing '{key}'", "the model folder is damaged; retrain it")
    return config


def load_model(folder: str | Path, **runtime: Any) -> StanceModel:
    """Load a model folder of any family.

    ``runtime`` settings (e.g. ``threads=2``, ``quantize="int8"``, ``inference_batch_size=64``) change how
    a model runs, not what it learned; a setting the family does not have is ignored, so the same
    call works for every family.

    >>> from comment_stance import load_model
    >>> model = load_model("models/tfidf-logreg")
    >>> model.classes_.tolist()
    ['conditional', 'skeptical', 'supportive']
    >>> model.predict(["Sign it already."])
    array(['supportive'], dtype=object)
    """
    folder = Path(folder)
    config = read_config(folder)
    cls = family_class(config["family"])
    try:
        model = cls(**config["params"])
    except TypeError as exc:
        raise ModelError(f"{folder / CONFIG}: hyper-parameters do not fit the '{config['family']}' family ({exc})",
                         "retrain the model with this version of comment-stance") from None
    known = model.get_params(deep=False)
    applicable = {k: v for k, v in runtime.items() if k in known and v is not None}
    if applicable:
        model.set_params(**applicable)
    model._load_weights(folder, config)
    model.config_ = config
    if config.get("off_topic"):
        from .offtopic import load_gate

        model.off_topic_ = load_gate(folder)
        if model.off_topic_ is None:
            raise ModelError(f"{folder}: config.json names an off-topic gate but {folder / 'off_topic'} is missing",
                             "copy the whole model folder, or retrain it")
    return model


def model_card(config: dict[str, Any], metrics: dict[str, Any]) -> str:
    """A Markdown model card from config.json and metrics.json."""
    training = config.get("training", {})
    lines = [
        f"# {config.get('name', config['family'])}",
        "",
        f"A `{config['family']}` stance model made with comment-stance {config['versions'].get('comment-stance', '?')}.",
        "Load it with `comment_stance.load_model(PATH)` or use it with `stance predict --model PATH`.",
        "",
        "## Labels",
        "",
        ", ".join(f"`{label}`" for label in config["labels"]),
        "",
        "## Training data",
        "",
    ]
    if training:
        lines += [
            f"- source: `{training.get('data', '?')}`",
            f"- rows: {training.get('rows', '?')} (label counts: {training.get('label_counts', {})})",
            f"- sha256 of the rows: `{training.get('sha256', '?')}`",
            f"- training time: {training.get('time_s', '?')} s",
        ]
    else:
        lines.append("- not recorded")
    if config.get("off_topic"):
        lines += ["", "## Off-topic gate", "",
                  f"`{config['off_topic']['folder']}/` flags comments with no stance toward the pact (`needs_review`, "
                  f"reason `off_topic`) at threshold {config['off_topic']['threshold']:.3f}; it never changes a label. "
                  f"Its scores are in `{config['off_topic']['folder']}/metrics.json`."]
    lines += ["", "## Hyper-parameters", "", "```json", json.dumps(config["params"], indent=2), "```", ""]
    lines += ["## Scores", ""]
    if not metrics:
        lines.append("No held-out scores recorded; run `stance evaluate --model PATH --data DATA`.")
    for split, scores in metrics.items():
        if not isinstance(scores, dict) or "macro_f1" not in scores:
            continue
        ci = scores.get("macro_f1_ci")
        ci_text = f" (95% CI {ci[0]:.3f}–{ci[1]:.3f})" if ci else ""
        lines.append(f"- **{split}** ({scores.get('n', '?')} comments): macro-F1 {scores['macro_f1']:.3f}{ci_text}, "
                     f"accuracy {scores['accuracy']:.3f}")
    lines += [
        "",
        "## Limits",
        "",
        "Scores hold for data like the training data. Comments on a target the model has not seen, or from another",
        "kind of forum, can score much lower: evaluate on your own labelled sample before relying on it.",
        "",
        "## Versions",
        "",
        *[f"- {k}: {v}" for k, v in config["versions"].items()],
        "",
    ]
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item"):
        return value.item()
    raise ModelError(f"hyper-parameter value {value!r} cannot be saved as JSON", "use plain numbers and strings")
