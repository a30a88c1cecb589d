"""Batch functions for engines that hand us pandas batches (Spark's ``mapInPandas``): each maps
pandas to pandas and calls the one scoring core, :func:`comment_stance.scoring.score_chunk`.

Nothing here imports an engine. :mod:`comment_stance.spark` wires these functions into Spark;
another engine (Dask, Ray, a service) could call them the same way.

* :func:`score_frame`: a batch of comment rows (a DataFrame's columns) -> scored rows.
* :func:`score_unit`: one *work unit* (a whole file, or a range of a Parquet file's row groups)
  read with :func:`comment_stance.readers.read_chunks`' record validation -> scored chunks, so
  that the rows, ids, error rows and scores are those of ``stance predict`` on the same file.
* :func:`worker_model`: the model, loaded once per worker process and checked against the
  manifest (sha256 of every file) computed where the job was started.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from .errors import ModelError

# -- the model folder: manifest, integrity, one load per worker ------------------------------------


def folder_manifest(folder: str | Path) -> dict[str, str]:
    """``relative path -> sha256`` of every file in a model folder (sorted, POSIX separators)."""
    folder = Path(folder)
    manifest = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        manifest[path.relative_to(folder).as_posix()] = digest.hexdigest()
    return manifest


def manifest_digest(manifest: dict[str, str]) -> str:
    """One sha256 over a manifest: the model's fingerprint in caches and error messages."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def check_manifest(folder: str | Path, manifest: dict[str, str]) -> None:
    """Raise :class:`ModelError` when ``folder`` differs from ``manifest`` (a file changed, is
    missing or was added)."""
    found = folder_manifest(folder)
    if found == manifest:
        return
    changed = sorted(k for k in manifest if k in found and found[k] != manifest[k])
    missing = sorted(set(manifest) - set(found))
    added = sorted(set(found) - set(manifest))
    what = (f"{changed[0]} differs" if changed else f"{missing[0]} is missing" if missing
            else f"{added[0]} is not in the model")
    raise ModelError(f"{folder}: the model folder on this worker is not the one the job was started with ({what})",
                     "make every worker see the same model folder (or let the job distribute it), "
                     "and do not change it while a job runs")


#: models loaded in this process, by (folder, manifest digest, runtime settings); a worker process
#: serves many batches and tasks, and loads each model once
_MODELS: dict[tuple, Any] = {}
#: how often this process loaded a model (read by the tests)
LOADS = {"count": 0}


def worker_model(folder: str | Path, manifest: dict[str, str] | None = None, **runtime: Any):
    """The model in ``folder``, loaded once per process; with ``manifest``, its files are checked
    first (once per process and model)."""
    from .persist import load_model

    key = (str(Path(folder).resolve()), manifest_digest(manifest) if manifest else None,
           tuple(sorted((k, v) for k, v in runtime.items() if v is not None)))
    model = _MODELS.get(key)
    if model is None:
        if manifest is not None:
            check_manifest(folder, manifest)
        if len(_MODELS) >= 2:  # a worker rarely serves more than one model; keep memory bounded
            _MODELS.pop(next(iter(_MODELS)))
        model = _MODELS[key] = load_model(folder, **runtime)
        LOADS["count"] += 1
    return model


# -- scoring a batch of rows -----------------------------------------------------------------------


@dataclass(frozen=True)
class FrameSpec:
    """Where the fields are in a batch of rows (column names of the engine's table)."""

    text_col: str = "text"
    id_col: str = "id"
    target_col: str | None = "target"
    parent_id_col: str | None = None
    parent_text_col: str | None = None
    keep: tuple[str, ...] = ()
    target: str | None = None
    review_below: float | None = None
    max_chars: int | None = None


def score_frame(model, frame: pd.DataFrame, spec: FrameSpec) -> pd.DataFrame:
    """Score one batch of rows: pandas in, pandas out, the columns of ``stance predict``'s output
    (:func:`comment_stance.scoring.output_columns`) plus the kept columns.

    Rows are validated as the file readers validate records (no text, empty text, a field over
    ``max_chars``); such rows come back as error rows naming their id. A row without an id
    becomes an error row too (an engine's table has no line numbers to fall back on). The parent
    of a reply is known only through ``parent_text_col`` (join it in beforehand).
    """
    from .readers import MAX_CHARS, CANONICAL, _Batch
    from .scoring import _RecentComments, score_chunk

    n = len(frame)
    extra = [k for k in spec.keep if k not in CANONICAL]
    batch = _Batch(extra, "row", spec.max_chars or MAX_CHARS)
    ids = _values(frame, spec.id_col, n)
    texts = _values(frame, spec.text_col, n)
    targets = _values(frame, spec.target_col, n)
    parent_ids = _values(frame, spec.parent_id_col, n)
    kept = [_values(frame, k, n) for k in extra]
    others = {k: _values(frame, k, n) for k in ("author", "created_at", "article_id") if k in spec.keep}
    for i in range(n):
        fields = {"id": ids[i], "text": texts[i], "target": targets[i], "parent_id": parent_ids[i]}
        for name, values in others.items():
            fields[name] = values[i]
        missing_id = ids[i] is None or ids[i] == ""
        batch.add(i + 1, fields, [values[i] for values in kept], "no id (give every row an id)" if missing_id else None)
    chunk = batch.emit(None)
    # error messages name the row by id, not by its place in this batch (which depends on batching)
    chunk.errors = [None if e is None else _by_id(e, chunk.lines[i], ids[i]) for i, e in enumerate(chunk.errors)]
    chunk.columns["id"] = [None if v is None or v == "" else (v if type(v) is str else str(v)) for v in ids]
    recent = None
    if spec.parent_text_col is not None:
        recent = _RecentComments(size=max(2 * n, 1))
        recent.add([p for p in parent_ids], _values(frame, spec.parent_text_col, n))
    return score_chunk(model, chunk, keep=list(spec.keep), target=spec.target, review_below=spec.review_below,
                       recent=recent)


def _values(frame: pd.DataFrame, name: str | None, n: int) -> list:
    if name is None or name not in frame.columns:
        return [None] * n
    return [None if _missing(v) else v for v in frame[name].tolist()]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or value is pd.NaT


def _by_id(error: str, line: int, row_id: Any) -> str:
    prefix = f"row {line}: "
    rest = error[len(prefix):] if error.startswith(prefix) else error
    return f"id {row_id}: {rest}" if row_id not in (None, "") else f"row without id: {rest}"


# -- scoring a work unit (a file, or a part of a Parquet file) -------------------------------------


@dataclass(frozen=True)
class Unit:
    """A piece of the input one task reads: a whole file, or Parquet row groups ``row_groups``
    starting at row ``first_row`` (1-based)."""

    path: str
    format: str
    name: str  #: the file's path relative to the input argument, in fallback ids
    row_groups: tuple[int, ...] | None = None
    first_row: int = 1
    has_id_column: bool = True
    #: ``key=value`` folders above the file (Hive-style partitioning), usable in ``keep``
    partition: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class UnitSpec:
    """Options of ``stance predict`` that every unit shares."""

    columns: dict[str, str] = field(default_factory=dict)  #: comment_stance.data.Columns fields
    keep: tuple[str, ...] = ()
    target: str | None = None
    review_below: float | None = None
    chunk_size: int = 10_000
    max_chars: int | None = None
    text_kept: bool = False  #: keep string types of kept columns (engines with a fixed schema)
    encoding: str | None = None  #: text encoding of CSV/TSV/JSON lines (``stance predict --encoding``)


def score_unit(model, unit: Unit, spec: UnitSpec, *, on_batch: Callable[[Unit, int], None] | None = None
               ) -> Iterator[pd.DataFrame]:
    """Read one unit with the file readers and yield its scored chunks, in file order.

    Ids are those of ``stance predict``: the file's own id, or the line (Parquet: row) number
    where a row has none. A file without an id column at all (CSV/TSV/Parquet: no such column in
    the header; JSON lines: none in the first record) gets ``<name>:<line>`` instead, so that ids
    stay unique across the files of a folder; they are the same on every run.
    """
    from .data import Columns
    from .readers import MAX_CHARS, read_chunks
    from .scoring import _RecentComments, score_chunk

    columns = Columns(**spec.columns)
    keep = list(spec.keep)
    partition = {k: v for k, v in unit.partition if k in keep}
    read_keep = [k for k in keep if k not in partition]
    max_chars = spec.max_chars or MAX_CHARS
    chunks = read_chunks(unit.path, format=unit.format, columns=columns, keep=read_keep, chunk_size=spec.chunk_size,
                         max_chars=max_chars, encoding=spec.encoding,
                         row_groups=list(unit.row_groups) if unit.row_groups is not None else None)
    recent = _RecentComments()
    for number, chunk in enumerate(chunks):
        if not unit.has_id_column:
            chunk.columns["id"] = [f"{unit.name}:{v}" if v == str(line) else v
                                   for v, line in zip(chunk.columns["id"], chunk.lines)]
        for key, value in partition.items():
            chunk.columns[key] = [value] * len(chunk)
        scored = score_chunk(model, chunk, keep=keep, target=spec.target, review_below=spec.review_below,
                             recent=recent)
        if spec.text_kept:
            scored = _kept_as_text(scored, keep)
        if on_batch is not None:
            on_batch(unit, number)
        yield scored


def _kept_as_text(scored: pd.DataFrame, keep: Sequence[str]) -> pd.DataFrame:
    from .scoring import output_columns

    names, types = output_columns([], keep)
    for name in names:
        if name not in types and name in scored.columns:
            scored[name] = pd.Series([_as_text(v) for v in scored[name].tolist()], dtype=object)
    return scored


def _as_text(value: Any) -> str | None:
    if _missing(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)
