"""Scoring comments with a trained model: a few texts in memory (:func:`predict`) or whole
comment exports, streamed chunk by chunk (:func:`score_file`)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence, TextIO

import numpy as np
import pandas as pd

from .errors import DataError, ModelError, OutputError, StanceError
from .models.base import StanceModel
from .review import review_flags, reviews

if TYPE_CHECKING:
    from .data import Columns
    from .readers import CommentChunk


#: the review columns, in output order (after the probabilities)
REVIEW_COLUMNS = ("needs_review", "review_reason")


def proba_column(label: str) -> str:
    """Name of the probability column of ``label`` in scored output."""
    return f"p_{label}"


def predict(
    model: str | Path | StanceModel,
    comments: Sequence[str] | pd.DataFrame,
    *,
    review_below: float | None = None,
    review: bool | None = None,
) -> pd.DataFrame:
    """Score comments; returns one row per comment, in input order.

    The result keeps the input's ``id`` (when the input is a table) and adds ``label``,
    ``confidence`` (the top probability), one ``p_<label>`` column per label and, with
    ``review_below``, ``review=True`` or a model that carries an off-topic gate, ``needs_review``
    and ``review_reason`` (see :mod:`comment_stance.review`).

    >>> frame = predict("models/tfidf-logreg", ["Sign it already.", "Only with monitors."], review_below=0.6)
    >>> list(frame.columns), len(frame)
    (['label', 'confidence', 'p_conditional', 'p_skeptical', 'p_supportive', 'needs_review', 'review_reason'], 2)
    """
    from .persist import load_model

    estimator = load_model(model) if isinstance(model, (str, Path)) else model
    table = comments if isinstance(comments, pd.DataFrame) else pd.DataFrame({"text": list(comments)})
    proba = estimator.predict_proba(table) if len(table) else np.zeros((0, len(estimator.classes_)))
    return scored_frame(table, proba, estimator.classes_, review_below=review_below, model=estimator, review=review)


def scored_frame(table: pd.DataFrame, proba: np.ndarray, classes: Sequence[Any],
                 *, review_below: float | None = None, model: StanceModel | None = None,
                 review: bool | None = None) -> pd.DataFrame:
    out = pd.DataFrame(index=range(len(table)))
    if "id" in table.columns:
        out["id"] = table["id"].to_numpy()
    classes = [str(c) for c in classes]
    best = proba.argmax(axis=1) if len(proba) else np.zeros(0, dtype=int)
    out["label"] = [classes[i] for i in best]
    out["confidence"] = proba.max(axis=1) if len(proba) else np.zeros(0)
    for j, label in enumerate(classes):
        out[proba_column(label)] = proba[:, j]
    if reviews(model, review_below, review):
        needs, reasons = review_flags(model, table, out["confidence"].to_numpy(), review_below=review_below)
        out["needs_review"] = needs
        out["review_reason"] = _object_column(reasons)
    return out


# -- batch scoring of files -------------------------------------------------------------------------
#: rows per chunk: large enough to amortize per-chunk costs, small enough for flat memory and a
#: fine-grained --resume
DEFAULT_CHUNK_SIZE = 10_000
#: the last this-many comments (twice, in two generations) are kept to find the text of a parent
RECENT_COMMENTS = 20_000


@dataclass
class ScoreSummary:
    """What :func:`score_file` returns (and ``stance predict`` prints)."""

    input: str
    output: str | None
    input_format: str
    output_format: str
    rows: int
    scored: int
    errors: int
    needs_review: int | None
    label_counts: dict[str, int]
    resumed_rows: int = 0
    time_s: float = 0.0
    first_errors: list[str] = field(default_factory=list)
    #: what looked wrong in the input (e.g. a record spanning hundreds of lines), one line each
    warnings: list[str] = field(default_factory=list)

    @property
    def rows_per_s(self) -> float:
        """Rows handled by this run per second (rows carried over from an interrupted run excluded)."""
        return (self.rows - self.resumed_rows) / self.time_s if self.time_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_s": round(self.rows_per_s, 1), "time_s": round(self.time_s, 3)}


class _RecentComments:
    """Texts of recent comments by id, to give replies their ``parent_text``. Two bounded
    generations keep memory flat however long the export is."""

    def __init__(self, size: int = RECENT_COMMENTS):
        self.size = size
        self.current: dict[str, str] = {}
        self.previous: dict[str, str] = {}

    def add(self, ids: list, texts: list) -> None:
        self.current.update((i, t) for i, t in zip(ids, texts) if isinstance(t, str))
        if len(self.current) >= self.size:
            self.previous, self.current = self.current, {}

    def get(self, key: str | None) -> str | None:
        if key is None:
            return None
        found = self.current.get(key)
        return found if found is not None else self.previous.get(key)


def _output_name(name: str, reserved: set[str]) -> str:
    return f"input_{name}" if name in reserved else name


def _object_column(values: Sequence[Any]) -> pd.Series:
    # object dtype: pandas' default string dtype costs more than scoring a row on the fast path
    return pd.Series(values, dtype=object)


def score_chunk(
    model: StanceModel,
    chunk: "CommentChunk",
    *,
    keep: Sequence[str] = (),
    target: str | None = None,
    review_below: float | None = None,
    recent: _RecentComments | None = None,
    review: bool | None = None,
) -> pd.DataFrame:
    """Score one chunk of records from :func:`comment_stance.readers.read_chunks`.

    Returns one row per record, in order: ``id``, the kept columns, ``label``, ``confidence``,
    ``p_<label>`` per label, ``needs_review`` and ``review_reason`` (with ``review_below``,
    ``review=True`` or a model with an off-topic gate; see :mod:`comment_stance.review`) and
    ``error``. Records that carry an error are not shown to the model; their scores are empty.
    """
    columns = score_columns(model, chunk, keep=keep, target=target, review_below=review_below, recent=recent,
                            review=review)
    return pd.DataFrame({name: values if isinstance(values, np.ndarray) and values.dtype != object
                         else _object_column(values) for name, values in columns.items()})


def score_columns(
    model: StanceModel,
    chunk: "CommentChunk",
    *,
    keep: Sequence[str] = (),
    target: str | None = None,
    review_below: float | None = None,
    recent: _RecentComments | None = None,
    review: bool | None = None,
) -> dict[str, list | np.ndarray]:
    """What :func:`score_chunk` returns, as columns (lists and arrays) rather than a table.

    The service scores a handful of comments per call, where building a pandas table costs more
    than the model; everything else goes through :func:`score_chunk`.
    """
    classes = [str(c) for c in model.classes_]
    reserved = {"id", "label", "confidence", *REVIEW_COLUMNS, "error", *map(proba_column, classes)}
    columns = chunk.columns
    n = len(chunk)
    ok = [i for i, error in enumerate(chunk.errors) if error is None]
    every = len(ok) == n

    def pick(values: list) -> list:
        return values if every else [values[i] for i in ok]

    texts = pick(columns["text"])
    targets = [target] * len(ok) if target is not None else pick(columns["target"])
    inputs = {"text": _object_column(texts), "target": _object_column(targets)}
    if recent is not None:  # parents earlier in this chunk count too
        recent.add(columns["id"], columns["text"])
        inputs["parent_text"] = _object_column([recent.get(p) for p in pick(columns["parent_id"])])
    table = pd.DataFrame(inputs) if ok else None
    # float64 whatever the family returns, so that every chunk is written with the same precision
    proba = np.asarray(model.predict_proba(table), dtype=np.float64) if ok else np.zeros((0, len(classes)))
    if proba.shape != (len(ok), len(classes)):
        raise ModelError(f"the model returned probabilities of shape {proba.shape} for {len(ok)} comments "
                         f"and {len(classes)} labels", "the model folder may be damaged; retrain it")
    out: dict[str, Any] = {"id": list(columns["id"])}
    for name in keep:
        if name != "id":
            out[_output_name(name, reserved)] = list(columns[name])
    labels = np.asarray(classes, dtype=object)[proba.argmax(axis=1)] if len(ok) else np.zeros(0, dtype=object)
    confidence = proba.max(axis=1) if len(ok) else np.zeros(0)
    if every:
        out["label"] = labels
        out["confidence"] = confidence
        for j, label in enumerate(classes):
            out[proba_column(label)] = proba[:, j]
    else:
        full_labels = np.full(n, None, dtype=object)
        full_labels[ok] = labels
        full_conf = np.full(n, np.nan)
        full_conf[ok] = confidence
        full_proba = np.full((n, len(classes)), np.nan)
        full_proba[ok] = proba
        out["label"] = full_labels
        out["confidence"] = full_conf
        for j, label in enumerate(classes):
            out[proba_column(label)] = full_proba[:, j]
    if reviews(model, review_below, review):
        needs = np.full(n, None, dtype=object)
        reasons = np.full(n, None, dtype=object)
        if ok:
            flags, why = review_flags(model, table, confidence, review_below=review_below)
            needs[ok] = flags.tolist()
            reasons[ok] = why
        out["needs_review"] = needs
        out["review_reason"] = reasons
    out["error"] = list(chunk.errors)
    return out


def output_columns(classes: Sequence[Any] | StanceModel, keep: Sequence[str] = (), review_below: float | None = None,
                   review: bool | None = None) -> tuple[list[str], dict[str, str]]:
    """The columns of scored output, in order, and the type of each typed column.

    ``classes`` is the model's labels or the model itself; only a model tells whether it carries an
    off-topic gate, which adds ``needs_review`` and ``review_reason`` without ``review_below``.
    """
    model = classes if hasattr(classes, "classes_") else None
    classes = [str(c) for c in (model.classes_ if model is not None else classes)]
    probas = [proba_column(c) for c in classes]
    reserved = {"id", "label", "confidence", *REVIEW_COLUMNS, "error", *probas}
    kept = [_output_name(name, reserved) for name in keep if name != "id"]
    columns = ["id", *kept, "label", "confidence", *probas]
    types = {"id": "str", "label": "str", "confidence": "float", "error": "str", **{p: "float" for p in probas}}
    if reviews(model, review_below, review):
        columns += list(REVIEW_COLUMNS)
        types.update({"needs_review": "bool", "review_reason": "str"})
    columns.append("error")
    return columns, types


def _input_fingerprint(path: Path) -> dict[str, Any]:
    """Enough to tell that the input is the same file, unchanged, without reading it all."""
    stat = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(1 << 16))
        if stat.st_size > 1 << 17:
            handle.seek(-(1 << 16), os.SEEK_END)
            digest.update(handle.read())
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "sha256_ends": digest.hexdigest()}


def _model_fingerprint(model: StanceModel) -> str:
    config = getattr(model, "config_", None)
    if config is None:
        config = {"family": model.family, "params": repr(sorted(model.get_params(deep=False).items())),
                  "labels": [str(c) for c in model.classes_]}
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


#: runtime settings that change how fast a model scores, not what it returns: a resumed job may
#: use others. Measured on a fine-tuned MiniLM: 1 or 2 torch threads give bit-identical
#: probabilities; the inference batch size does not (other batches pad differently: up to 4e-10
#: apart, the same labels, other digits in the file), so it stays in the fingerprint.
SPEED_ONLY_SETTINGS = ("threads",)


def _runtime_fingerprint(model: StanceModel) -> dict[str, Any]:
    """The model's settings as loaded (``load_model(folder, quantize="int8")`` changes them
    without changing ``config.json``), but for those that only change its speed."""
    try:
        params = model.get_params(deep=False)
    except Exception:  # a hand-made model without scikit-learn's parameter protocol
        return {}
    plain = (str, int, float, bool, type(None))
    return {name: value if isinstance(value, plain) else repr(value) for name, value in sorted(params.items())
            if name not in SPEED_ONLY_SETTINGS}


class _RowsDigest:
    """A digest of the records scored so far that does not depend on where chunks start: the sum
    of one hash per record and its position. Stored with the job's state, it lets a resumed job
    check that the rows it skips are the rows that were scored."""

    MODULUS = 1 << 128

    def __init__(self, value: str | None = None, rows: int = 0):
        self.value = int(value, 16) if value else 0
        self.rows = rows

    def add(self, chunk: "CommentChunk", count: int | None = None) -> None:
        columns = list(chunk.columns.values())
        count = len(chunk) if count is None else count
        total = self.value
        blake = hashlib.blake2b
        for i in range(count):
            record = "\x1f".join(["" if c[i] is None else str(c[i]) for c in columns] + [chunk.errors[i] or ""])
            total += int.from_bytes(blake(f"{self.rows + i}\x1e{record}".encode("utf-8", "surrogatepass"),
                                          digest_size=16).digest(), "big")
        self.value = total % self.MODULUS
        self.rows += count

    def hex(self) -> str:
        return f"{self.value:032x}"


def score_file(
    model: str | Path | StanceModel,
    input: str | Path,
    out: str | Path | TextIO,
    *,
    format: str | None = None,
    out_format: str | None = None,
    columns: "Columns | None" = None,
    keep: Sequence[str] = (),
    target: str | None = None,
    review_below: float | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_chars: int | None = None,
    encoding: str | None = None,
    overwrite: bool = False,
    resume: bool = False,
    runtime: dict[str, Any] | None = None,
    progress: Callable[[int, float | None], None] | None = None,
) -> ScoreSummary:
    """Score every comment of a file and write one output row per input row, in input order.

    ``input`` is any format :func:`comment_stance.readers.read_chunks` reads (``format`` forces
    one); ``out`` is a ``.csv``/``.tsv``/``.jsonl``/``.parquet`` path, written through
    ``OUT.partial`` and moved into place at the end, or an open text stream (``out_format``
    ``csv``, ``tsv``, ``jsonl`` or ``json``). The file is read in chunks of ``chunk_size`` rows,
    so memory stays flat. Rows that cannot be scored keep their place with an ``error``.
    ``resume=True`` continues an interrupted job; ``progress(rows_done, share_of_file)`` is
    called after each chunk. ``encoding`` is the input's text encoding (default UTF-8).

    A file that breaks part of the way through (an export cut short) raises
    :class:`~comment_stance.errors.DataError` but keeps the rows scored before the break in
    ``OUT.partial``: ``resume=True`` continues once the input is complete again (the rows already
    scored must be the same in it). The final ``out`` only ever holds a complete job.

    >>> from comment_stance.scoring import score_file
    >>> summary = score_file("models/tfidf-logreg", "tests/fixtures/exports/disqus.xml", "scores.csv")
    >>> summary.rows, summary.scored, summary.first_errors
    (3, 2, ['line 50: comment deleted on Disqus (no text to score)'])
    """
    from .data import Columns
    from .persist import load_model
    from .readers import MAX_CHARS, detect_format, read_chunks
    from .writers import ResumableOutput, StreamOutput

    input = Path(input)
    if not input.is_file():
        raise DataError(f"{input}: no such file", "check the path")
    fmt = detect_format(input, format)
    estimator = load_model(model, **(runtime or {})) if isinstance(model, (str, Path)) else model
    columns = columns or Columns()
    keep = [name for name in dict.fromkeys(keep)]
    max_chars = max_chars or MAX_CHARS
    names, types = output_columns(estimator, keep, review_below)
    started = time.perf_counter()

    if hasattr(out, "write"):
        sink: Any = StreamOutput(out, columns=names, format=out_format or "csv")
        out_name, out_fmt = None, sink.format
    else:
        out = Path(out)
        if out.resolve() == input.resolve():
            raise OutputError(f"{out}: is the input file", "write the scores to another file")
        options = {"format": fmt, "columns": asdict(columns), "keep": keep, "target": target,
                   "review_below": review_below, "max_chars": max_chars, "encoding": encoding}
        fingerprint = {"input": _input_fingerprint(input), "model": _model_fingerprint(estimator),
                       "runtime": _runtime_fingerprint(estimator), "options": options}
        # a job stopped by a broken input resumes on the fixed input; the rows it skips are
        # checked against the digest of those it scored instead
        sink = ResumableOutput(out, columns=names, types=types, fingerprint=fingerprint, format=out_format,
                               overwrite=overwrite, resume=resume, may_change_if_stopped=("input",))
        out_name, out_fmt = str(out), sink.format

    counts = {"labels": {str(c): 0 for c in estimator.classes_}, "errors": 0, "needs_review": 0,
              "first_errors": [], **sink.counts}
    skip = resumed_rows = sink.rows_done
    digest, done_digest = _RowsDigest(), counts.pop("rows_digest", None)
    warnings: list[str] = []
    recent = _RecentComments()
    try:
        for chunk in read_chunks(input, format=fmt, columns=columns, keep=keep, chunk_size=chunk_size,
                                 max_chars=max_chars, encoding=encoding):
            warnings.extend(chunk.warnings)
            if skip:  # rows an interrupted run already wrote: read past them
                taken = min(skip, len(chunk))
                recent.add(chunk.columns["id"][:taken], chunk.columns["text"][:taken])
                digest.add(chunk, taken)
                skip -= taken
                if not skip:
                    _check_skipped(sink, digest, done_digest)
                if taken == len(chunk):
                    continue
                chunk = chunk.tail(taken)
            scored = score_chunk(estimator, chunk, keep=keep, target=target, review_below=review_below,
                                 recent=recent)
            _count(counts, scored, chunk.errors)
            digest.add(chunk)
            sink.write(scored, rows=len(chunk), counts={**counts, "rows_digest": digest.hex()})
            if progress is not None:
                progress(sink.rows_done, chunk.progress)
        if skip:
            raise OutputError(f"{out}: the interrupted job had written {sink.rows_done} rows, "
                              f"but the input now has {sink.rows_done - skip}",
                              "rerun with the input the job started with, or pass --overwrite to start over")
        sink.finish()
    except StanceError as exc:
        if not sink.rows_done:
            sink.discard()  # nothing scored yet: leave nothing behind
            raise
        # keep what was scored: the same error comes back on --resume until the input is fixed
        sink.stop(str(exc))
        if isinstance(exc, DataError) and sink.path is not None:
            raise DataError(f"{exc.message}; {sink.rows_done:,} rows scored before it are kept in {sink.partial}",
                            f"{exc.hint + '; then ' if exc.hint else ''}rerun with --resume to continue from there "
                            "(or --overwrite to start over)") from None
        raise
    except BaseException:
        sink.close()  # interrupted (Ctrl-C, a crash): OUT.partial stays for --resume
        raise
    return ScoreSummary(
        input=str(input), output=out_name, input_format=fmt, output_format=out_fmt,
        rows=sink.rows_done, scored=sink.rows_done - counts["errors"], errors=counts["errors"],
        needs_review=counts["needs_review"] if "needs_review" in names else None,
        label_counts=dict(counts["labels"]), resumed_rows=resumed_rows,
        time_s=time.perf_counter() - started, first_errors=list(counts["first_errors"]), warnings=warnings,
    )


def _check_skipped(sink: Any, digest: _RowsDigest, expected: str | None) -> None:
    """The rows a resumed job skipped must be those the interrupted job scored."""
    if expected is not None and digest.hex() != expected:
        raise OutputError(f"{sink.state_path}: cannot resume: the rows already scored differ from those "
                          "in the input now", "rerun with the input the job started with, or pass --overwrite "
                          "to start over")


def _count(counts: dict[str, Any], scored: pd.DataFrame, errors: list[str | None]) -> None:
    labels = counts["labels"]
    for label, number in scored["label"].value_counts().items():
        labels[str(label)] = labels.get(str(label), 0) + int(number)
    bad = [e for e in errors if e is not None]
    counts["errors"] += len(bad)
    counts["first_errors"] = (counts["first_errors"] + bad[:5])[:5]
    if "needs_review" in scored.columns:
        counts["needs_review"] += int((scored["needs_review"] == True).sum())  # noqa: E712 (None stays out)
