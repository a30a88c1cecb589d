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

import errno
import fnmatch
import glob
import json
import os
import platform
import shutil
import secrets
import sys
from datetime import datetime, timezone
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from . import __version__
from .errors import ModelError, OutputError

if TYPE_CHECKING:
    from .models.base import StanceModel

FORMAT_VERSION = 1
CONFIG = "config.json"
METRICS = "metrics.json"
CARD = "README.md"

# Limits on a model folder, checked before anything in it is read (a folder may have been handed
# to the user; see docs/transformer.md, "Loading rules").
#: config.json is a few KiB (the transformer's training history included)
MAX_CONFIG_BYTES = 1 << 20
#: no file in a model folder is larger (the largest weights we write are a few hundred MiB)
MAX_FILE_BYTES = 4 << 30
#: no model folder holds more files (a per-target TF-IDF model has one file per target)
MAX_FILES = 10_000
#: file types that run code when read (pickle and formats built on it): never loaded, and a folder
#: holding one is refused, whatever config.json says
UNSAFE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".dill", ".npy", ".npz", ".h5",
                   ".msgpack", ".py", ".pyc", ".so")


def save_model(
    model: StanceModel,
    folder: str | Path,
    *,
    name: str | None = None,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    overwrite: bool = False,
    extras: Callable[[Path], None] | None = None,
) -> Path:
    """Write ``model`` to ``folder`` as a self-describing model folder and return its path.

    The folder is assembled beside its destination and moved into place at the end, so a crash
    never leaves half a model behind. An existing non-empty folder is replaced only with
    ``overwrite=True``, and only when it is a model folder holding nothing but what this tool
    writes (see :func:`check_destination`). ``extras(staging)`` may add files (figures) before
    the folder is moved into place.
    """
    model._check_fitted()
    folder = Path(folder)
    with staged_folder(folder, overwrite=overwrite, kind="model") as staging:
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
        if extras is not None:
            extras(staging)
    return folder


#: what each kind of folder this tool writes may hold; ``--overwrite`` replaces nothing else
FOLDER_KINDS: dict[str, dict[str, Any]] = {
    "model": {"what": "model folder", "command": "stance train",
              "entries": (CONFIG, METRICS, CARD, "weights", "confusion*.png", "off_topic")},
    "run": {"what": "run folder", "command": "stance experiment run",
            "entries": ("config.toml", "run.json", "environment.json", "metrics.json", "timings.json", "predictions",
                        "models", "report.md", "report.html", "learning-curve-*.png")},
}


def folder_kind(folder: str | Path) -> str | None:
    """``"model"`` or ``"run"`` when ``folder`` is one this tool wrote, else ``None``.

    A model folder is recognized by its ``config.json`` (``format_version`` and ``family``), a run
    folder by its ``run.json`` (written by :func:`comment_stance.experiments.run_experiment`, with
    the ``comment_stance`` version in it) next to ``config.toml``.

    >>> folder_kind("/no/such/folder") is None
    True
    """
    folder = Path(folder)
    config = _small_json(folder / CONFIG)
    if isinstance(config, dict) and isinstance(config.get("format_version"), int) \
            and isinstance(config.get("family"), str) and "labels" in config:
        return "model"
    run = _small_json(folder / "run.json")
    if isinstance(run, dict) and "comment_stance" in run and "jobs" in run and (folder / "config.toml").is_file():
        return "run"
    return None


def check_destination(folder: str | Path, *, overwrite: bool = False, kind: str = "model") -> None:
    """Raise :class:`OutputError` unless a ``kind`` folder may be written to ``folder``.

    Free: a path that does not exist, or an empty folder. With ``overwrite`` also: a ``kind``
    folder this tool wrote that holds nothing else. Never: a file, a symbolic link, the working
    folder or one above it, the home folder, the file-system root, or a folder with other content.
    """
    folder = Path(folder)
    what = FOLDER_KINDS[kind]["what"]
    if folder.is_symlink():
        raise OutputError(f"{folder}: is a symbolic link", "give the real folder as --out, or another --out")
    if not folder.exists():
        return
    _refuse_protected(folder)
    if not folder.is_dir():
        raise OutputError(f"{folder}: is a file, not a {what}", "choose another --out")
    if not any(folder.iterdir()):
        return
    if not overwrite:
        raise OutputError(f"{folder}: already exists", "choose another --out or pass --overwrite")
    found = folder_kind(folder)
    if found is None:
        marker = CONFIG if kind == "model" else "run.json"
        raise OutputError(f"{folder}: was not written by '{FOLDER_KINDS[kind]['command']}' (no comment-stance "
                          f"{marker}), so --overwrite will not replace it",
                          "choose another --out, or move the folder away yourself")
    if found != kind:
        raise OutputError(f"{folder}: is a {FOLDER_KINDS[found]['what']}, not a {what}, "
                          "so --overwrite will not replace it", "choose another --out")
    patterns = FOLDER_KINDS[kind]["entries"]
    foreign = sorted(p.name for p in folder.iterdir() if not any(fnmatch.fnmatchcase(p.name, pat) for pat in patterns))
    if foreign:
        raise OutputError(f"{folder}: holds '{foreign[0]}', which '{FOLDER_KINDS[kind]['command']}' did not write, "
                          f"so --overwrite will not replace the folder",
                          f"move {foreign[0]} out of the folder, or choose another --out")


def _refuse_protected(folder: Path) -> None:
    resolved = folder.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise OutputError(f"{folder}: is the working folder or holds it, so it will not be replaced",
                          "give a sub-folder as --out, e.g. --out models/NAME")
    if resolved == Path.home().resolve() or resolved == Path(resolved.anchor):
        raise OutputError(f"{folder}: is the home folder or the root, so it will not be replaced",
                          "give a sub-folder as --out, e.g. --out models/NAME")


@contextmanager
def staged_folder(folder: str | Path, *, overwrite: bool = False, kind: str = "model") -> Iterator[Path]:
    """Build a folder beside its destination and move it into place only when the block succeeds.

    The destination is checked with :func:`check_destination` before the block and again before
    it is replaced. A crash or Ctrl-C inside the block removes the half-built folder and leaves any
    existing ``folder`` untouched. An existing folder is swapped with the new one in one atomic
    step where the system can (Linux), and only then deleted. Elsewhere it is renamed aside, the
    new one renamed into place, and only then the old one deleted; if the second rename fails the
    old one is put back, and a process killed between the two renames leaves the old folder aside
    under a hidden name, which the next ``staged_folder`` for the same destination puts back first
    (see :func:`_recover`).
    """
    folder = Path(folder)
    check_destination(folder, overwrite=overwrite, kind=kind)
    folder.parent.mkdir(parents=True, exist_ok=True)
    _recover(folder)
    staging = _new_sibling(folder, "partial")
    try:
        yield staging
        _replace(staging, folder, overwrite=overwrite, kind=kind)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _replace(staging: Path, folder: Path, *, overwrite: bool, kind: str) -> None:
    check_destination(folder, overwrite=overwrite, kind=kind)  # it may have changed while we worked
    if not folder.exists():
        os.rename(staging, folder)
        return
    if not any(folder.iterdir()):
        folder.rmdir()
        os.rename(staging, folder)
        return
    if _exchange(staging, folder):  # one atomic step: the destination is never missing
        shutil.rmtree(staging, ignore_errors=True)  # now holds the old folder
        return
    aside = _new_sibling(folder, "old")
    os.rename(folder, aside / "folder")
    try:
        os.rename(staging, folder)
    except BaseException:
        os.rename(aside / "folder", folder)
        aside.rmdir()
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); ``False`` where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not glibc 2.28+
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_cwd, exchange = -100, 2
    if renameat2(at_cwd, os.fsencode(first), at_cwd, os.fsencode(second), exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # a file system without it
        return False
    raise OSError(error, os.strerror(error), str(second))


def _new_sibling(folder: Path, state: str) -> Path:
    """A new hidden folder beside ``folder``: ``.NAME.partial-PID-RANDOM`` or ``.NAME.old-PID-RANDOM``.

    Made with the umask's permissions (mkdtemp would make it private, and the finished folder
    should not be), without changing the process's umask to read it.
    """
    while True:
        path = folder.parent / f".{folder.name}.{state}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def _recover(folder: Path) -> None:
    """Clean up after a process that was killed while it wrote ``folder``.

    Its half-built staging folders are deleted; an old folder it had renamed aside but not yet
    replaced is put back when ``folder`` is missing. Only siblings left by processes that are no
    longer running are touched, so two processes writing beside each other do not collide.
    """
    for sibling in sorted(folder.parent.glob(f".{glob.escape(folder.name)}.*-*-*")):
        state, _, rest = sibling.name[len(folder.name) + 2:].partition("-")
        pid = rest.split("-", 1)[0]
        if state not in ("partial", "old") or not pid.isdigit() or _alive(int(pid)):
            continue
        previous = sibling / "folder"
        if state == "old" and not folder.exists() and previous.is_dir():
            os.rename(previous, folder)
        shutil.rmtree(sibling, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _small_json(path: Path, limit: int = 1 << 20) -> Any:
    """The JSON in ``path``, or ``None`` when it is missing, too big, a link or not JSON."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > limit:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def write_metrics(folder: str | Path, metrics: dict[str, Any]) -> None:
    """Replace metrics.json and regenerate the model card (after evaluation on held-out data)."""
    folder = Path(folder)
    config = read_config(folder)
    _write_atomic(folder / METRICS, json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    _write_atomic(folder / CARD, model_card(config, metrics))


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader (or a crash) sees the old or the new file, never half."""
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def read_config(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    path = folder / CONFIG
    if not folder.is_dir():
        aside = sorted(folder.parent.glob(f".{glob.escape(folder.name)}.old-*/folder"))
        if aside:  # a process killed while it replaced the folder (without an atomic swap)
            raise ModelError(f"{folder}: no such model folder; an interrupted --overwrite left the previous one at "
                             f"{aside[-1]}", "rerun the command, or move that folder back")
        raise ModelError(f"{folder}: no such model folder", "pass the folder written by 'stance train --out'")
    if not path.is_file():
        raise ModelError(f"{folder}: not a model folder (no {CONFIG})", "pass the folder written by 'stance train --out'")
    if path.is_symlink():
        raise ModelError(f"{path}: is a symbolic link; model folders hold their own files",
                         "copy the model folder with its files (cp -rL), or retrain it")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ModelError(f"{path}: {path.stat().st_size:,} bytes, more than the {MAX_CONFIG_BYTES:,} a model's "
                         "config.json may have", "only load model folders written by comment-stance, or retrain the model")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})", "the model folder is damaged; retrain it") from None
    except RecursionError:
        raise ModelError(f"{path}: JSON nested too deeply", "the model folder is damaged; retrain it") from None
    if not isinstance(config, dict):
        raise ModelError(f"{path}: not a JSON object", "the model folder is damaged; retrain it")
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
    from .models import family_class  # here, not at the top: the model families do not need persist loaded

    folder = Path(folder)
    config = read_config(folder)
    inspect_folder(folder)
    cls = family_class(config["family"])
    if not isinstance(config["params"], dict):
        raise ModelError(f"{folder / CONFIG}: 'params' is not a JSON object", "the model folder is damaged; retrain it")
    params = dict(config["params"])
    if "names" in cls().get_params(deep=False):
        # folders written before the setting existed read comments as written, whatever the default
        params.setdefault("names", "keep")
    try:
        model = cls(**params)
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


def inspect_folder(folder: str | Path) -> None:
    """Refuse a model folder that no ``stance train`` writes, before any of its files is read.

    Refused: a symbolic link anywhere inside (it could point anywhere on the machine), a file type
    that runs code when read (:data:`UNSAFE_SUFFIXES`: pickle, ``.bin``, ``.pt``...), a file larger
    than :data:`MAX_FILE_BYTES`, more than :data:`MAX_FILES` files. The folder itself may be a link.
    """
    folder = Path(folder)
    hint = "only load model folders written by comment-stance, or retrain the model"
    count = 0
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            path = Path(root) / name
            if path.is_symlink():
                raise ModelError(f"{path}: is a symbolic link; model folders hold their own files",
                                 "copy the model folder with its files (cp -rL), or retrain it")
        for name in sorted(files):
            path = Path(root) / name
            count += 1
            if count > MAX_FILES:
                raise ModelError(f"{folder}: more than {MAX_FILES:,} files, more than any model folder has", hint)
            if name.lower().endswith(UNSAFE_SUFFIXES):
                raise ModelError(f"{path}: a '{Path(name).suffix}' file can run code when it is read (pickle), "
                                 "so this model folder is not loaded", "use model folders written by comment-stance "
                                 "(skops and safetensors weights only), or retrain the model")
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise ModelError(f"{path}: {size / 2**30:.1f} GiB, more than the {MAX_FILE_BYTES / 2**30:.0f} GiB "
                                 "a file in a model folder may have", hint)


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
