"""Streaming writers for scored comments: CSV/TSV, JSONL and Parquet.

A file output is written beside its destination, as ``OUT.partial``, chunk by chunk, and moved
into place only when the job is done, so readers of ``OUT`` never see half a file. After every
chunk a small state file ``OUT.partial.json`` records how many input rows are done and where the
output ends; an interrupted job continues from there with ``resume=True``::

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"id": ["c1", "c2"], "label": ["supportive", "skeptical"]})
    >>> job = ResumableOutput("scores.csv", columns=["id", "label"], fingerprint={"input": "comments.csv"})
    >>> job.write(frame, rows=len(frame))
    >>> print(job.finish().read_text(), end="")
    id,label
    c1,supportive
    c2,skeptical

CSV cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return) are prefixed with ``'`` (see :func:`neutralize`); JSONL and Parquet
keep values as they are.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Sequence, TextIO

import pandas as pd

from .errors import OutputError

#: output file suffixes -> format
OUTPUT_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
STATE_VERSION = 1
# ASCII formula triggers (OWASP "CSV injection") and their full-width forms, which some
# spreadsheets also accept
_FORMULA_START = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def output_format(path: str | Path) -> str:
    """The output format for ``path``, from its extension.

    >>> output_format("scores.parquet")
    'parquet'
    """
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise OutputError(f"{path}: cannot tell the output format from '{suffix or '(no extension)'}'",
                          "name the output .csv, .tsv, .jsonl or .parquet")
    return OUTPUT_FORMATS[suffix]


def neutralize(value: Any) -> Any:
    """Make a CSV cell safe to open in a spreadsheet: text that would run as a formula gets a
    leading ``'``; numbers such as ``-2`` stay as they are.

    >>> neutralize('=HYPERLINK("http://x")'), neutralize("-2"), neutralize("fine")
    ('\\'=HYPERLINK("http://x")', '-2', 'fine')
    """
    if isinstance(value, str) and value and value[0] in _FORMULA_START and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def _neutralized(frame: pd.DataFrame) -> pd.DataFrame:
    out = {}
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            out[neutralize(name)] = [neutralize(v) for v in column.tolist()]
        else:
            out[neutralize(name)] = column
    return pd.DataFrame(out, index=frame.index)


def _csv_text(frame: pd.DataFrame, *, header: bool, delimiter: str) -> str:
    import csv

    frame = _neutralized(frame)
    # the csv module quotes a cell holding "\n" (our line end) but not one holding a lone "\r",
    # which every reader takes as a line end: a chunk with one quotes all its text cells
    carriage = any(isinstance(v, str) and "\r" in v for name in frame.columns
                   if not pd.api.types.is_numeric_dtype(frame[name].dtype)
                   for v in frame[name].tolist())
    return frame.to_csv(None, sep=delimiter, header=header, index=False, lineterminator="\n",
                        quoting=csv.QUOTE_NONNUMERIC if carriage else csv.QUOTE_MINIMAL)


def _jsonl_text(frame: pd.DataFrame) -> str:
    if not len(frame):
        return ""
    text = frame.to_json(None, orient="records", lines=True, force_ascii=False, double_precision=15)
    return text if text.endswith("\n") else text + "\n"


def _parquet_value(value: Any) -> Any:
    """Kept columns go to Parquet as text, whatever type each row had in the input."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


class ResumableOutput:
    """An output file written through ``OUT.partial`` and ``OUT.partial.json``.

    ``columns`` fixes the column order; ``types`` maps columns to ``"float"``, ``"bool"`` or
    ``"str"`` (others are kept as they come, and written as text in Parquet). ``fingerprint``
    describes the job (input file, model, options): ``resume=True`` continues an interrupted job
    only when it matches, except for the keys in ``may_change_if_stopped`` when the job was
    stopped by an error (see :meth:`stop`; the caller checks what it needs to). ``rows_done`` is
    the number of input rows already in the output and ``counts`` whatever the caller stored.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        columns: Sequence[str],
        types: dict[str, str] | None = None,
        fingerprint: dict[str, Any] | None = None,
        format: str | None = None,
        overwrite: bool = False,
        resume: bool = False,
        may_change_if_stopped: Sequence[str] = (),
    ):
        self.path = Path(path)
        self.may_change = tuple(may_change_if_stopped)
        self.format = format or output_format(self.path)
        self.columns = list(columns)
        self.types = dict(types or {})
        self.fingerprint = fingerprint or {}
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.state_path = self.path.with_name(self.path.name + ".partial.json")
        self.rows_done = 0
        self.counts: dict[str, Any] = {}
        self.resumed = False
        self.stopped: str | None = None  # why the interrupted job stopped, when an error stopped it
        self._position = 0  # bytes (CSV/JSONL) or parts (Parquet) in the partial output
        self._handle = None
        if self.path.is_dir():
            raise OutputError(f"{self.path}: is a folder", "give a file name such as scores.csv")
        state = self._read_state() if resume else None
        if state is not None:
            self._continue(state, overwrite)
        else:  # with resume, leftovers that cannot be continued (a state without output) are dropped
            self._start(overwrite, drop_leftovers=overwrite or resume)

    # -- opening -------------------------------------------------------------------------------
    def _read_state(self) -> dict[str, Any] | None:
        if not self.state_path.is_file() or not self.partial.exists():
            return None
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None  # a state file cut short: nothing reliable to continue from

    def _continue(self, state: dict[str, Any], overwrite: bool) -> None:
        expected = {**self.fingerprint, "format": self.format, "columns": self.columns, "version": STATE_VERSION}
        differs = [key for key, value in expected.items() if state.get(key) != value
                   and not (state.get("stopped") and key in self.may_change)]
        if differs:
            if overwrite:  # --resume --overwrite: continue when possible, else start over
                self._start(overwrite, drop_leftovers=True)
                return
            what = {"input": "the input file", "model": "the model", "options": "the options",
                    "runtime": "the model's runtime settings", "format": "the output format",
                    "columns": "the output columns", "version": "the state file's version"}.get(differs[0], differs[0])
            fix = {"runtime": "rerun with the interrupted job's model settings (e.g. the same --quantize), "
                              "or pass --overwrite to start over"}.get(differs[0])
            raise OutputError(f"{self.state_path}: cannot resume: {what} changed since the interrupted job",
                              fix or "rerun with the same input, model and options, or pass --overwrite to start over")
        if self.path.exists() and not overwrite:
            raise OutputError(f"{self.path}: already exists", "choose another --out or pass --overwrite")
        self.rows_done = int(state["rows_done"])
        self.counts = dict(state.get("counts", {}))
        self.stopped = state.get("stopped")
        self._position = int(state["position"])
        self.resumed = True
        if self.format == "parquet":
            # a part written after the last state update belongs to no committed chunk
            for part in self.partial.glob("part-*"):
                if not part.name.endswith(".parquet") or int(part.name[5:13]) >= self._position:
                    part.unlink()
        else:
            with open(self.partial, "r+b") as handle:  # drop a chunk half-written when the job died
                handle.truncate(self._position)
            self._handle = open(self.partial, "ab")

    def _start(self, overwrite: bool, drop_leftovers: bool) -> None:
        if self.path.exists() and not overwrite:
            raise OutputError(f"{self.path}: already exists", "choose another --out or pass --overwrite")
        if (self.partial.exists() or self.state_path.exists()) and not drop_leftovers:
            raise OutputError(f"{self.partial}: an interrupted job left this behind",
                              "pass --resume to continue it, or --overwrite to start over")
        self._remove_partial()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.format == "parquet":
            self.partial.mkdir()
        else:
            self._handle = open(self.partial, "wb")
        self.rows_done, self.counts, self._position = 0, {}, 0
        self._save_state()

    def _remove_partial(self) -> None:
        if self.partial.is_dir():
            shutil.rmtree(self.partial)
        elif self.partial.exists():
            self.partial.unlink()
        self.state_path.unlink(missing_ok=True)

    # -- writing -------------------------------------------------------------------------------
    def write(self, frame: pd.DataFrame, *, rows: int, counts: dict[str, Any] | None = None) -> None:
        """Append ``frame`` (in ``columns`` order) as the output of the next ``rows`` input rows,
        then record the new state. ``counts`` is stored with it and comes back on resume."""
        frame = frame[self.columns]
        if self.format == "parquet":
            self._write_part(frame)
        else:
            if self.format in ("csv", "tsv"):
                text = _csv_text(frame, header=self._position == 0, delimiter="," if self.format == "csv" else "\t")
            else:
                text = _jsonl_text(frame)
            self._handle.write(text.encode("utf-8"))
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._position = self._handle.tell()
        self.rows_done += rows
        if counts is not None:
            self.counts = counts
        self.stopped = None
        self._save_state()

    def _schema(self):
        import pyarrow as pa

        kinds = {"float": pa.float64(), "bool": pa.bool_()}
        return pa.schema([(name, kinds.get(self.types.get(name, "str"), pa.string())) for name in self.columns])

    def _write_part(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = self._schema()
        arrays = {}
        for name in self.columns:
            values = frame[name].tolist()
            kind = self.types.get(name, "str")
            if kind == "float":
                arrays[name] = pa.array(frame[name].to_numpy(dtype="float64"), type=pa.float64(), from_pandas=True)
            elif kind == "bool":
                arrays[name] = pa.array([None if v is None or v != v else bool(v) for v in values], type=pa.bool_())
            else:
                arrays[name] = pa.array([_parquet_value(v) for v in values], type=pa.string())
        table = pa.Table.from_pydict(arrays, schema=schema)
        part = self.partial / f"part-{self._position:08d}.parquet"
        staging = part.with_suffix(".tmp")
        pq.write_table(table, staging)
        os.replace(staging, part)
        self._position += 1

    def _save_state(self) -> None:
        state = {"version": STATE_VERSION, "format": self.format, "columns": self.columns, **self.fingerprint,
                 "rows_done": self.rows_done, "position": self._position, "counts": self.counts}
        if self.stopped:
            state["stopped"] = self.stopped
        staging = self.state_path.with_name(self.state_path.name + ".tmp")
        staging.write_text(json.dumps(state, ensure_ascii=False, default=str))
        os.replace(staging, self.state_path)

    # -- closing -------------------------------------------------------------------------------
    def finish(self) -> Path:
        """Complete the file and move it into place atomically; returns its path."""
        if self.format == "parquet":
            self._merge_parts()
        else:
            if self._position == 0 and self.format in ("csv", "tsv"):  # no rows: still a header
                delimiter = "," if self.format == "csv" else "\t"
                self._handle.write(_csv_text(pd.DataFrame(columns=self.columns), header=True,
                                             delimiter=delimiter).encode("utf-8"))
            self._handle.close()
            self._handle = None
            os.replace(self.partial, self.path)
        self.state_path.unlink(missing_ok=True)
        return self.path

    def _merge_parts(self) -> None:
        import pyarrow.parquet as pq

        merged = self.partial / "merged.tmp"
        schema = self._schema()
        with pq.ParquetWriter(merged, schema) as writer:
            for index in range(self._position):  # one part in memory at a time
                writer.write_table(pq.read_table(self.partial / f"part-{index:08d}.parquet", schema=schema))
        os.replace(merged, self.path)
        shutil.rmtree(self.partial)

    def close(self) -> None:
        """Stop writing but keep ``OUT.partial`` for a later resume (the job was interrupted)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def stop(self, reason: str) -> None:
        """Stop writing after an error, keeping ``OUT.partial`` and recording ``reason`` in its
        state: a later resume may then continue on a fixed input (``may_change_if_stopped``)."""
        self.close()
        self.stopped = reason
        self._save_state()

    def discard(self) -> None:
        """Stop writing and remove the partial output (nothing worth keeping was written)."""
        self.close()
        self._remove_partial()


class StreamOutput:
    """Scored rows written to an open text stream (e.g. standard output), without resume:
    ``csv``/``tsv`` (neutralized), ``jsonl``, or ``json`` (one JSON array)."""

    def __init__(self, stream: TextIO, *, columns: Sequence[str], format: str = "csv"):
        if format not in ("csv", "tsv", "jsonl", "json"):
            raise OutputError(f"cannot write {format} to a stream", "use csv, tsv, jsonl or json")
        self.stream = stream
        self.columns = list(columns)
        self.format = format
        self.rows_done = 0
        self.counts: dict[str, Any] = {}
        self.resumed = False
        self.path = None
        self._started = False

    def write(self, frame: pd.DataFrame, *, rows: int, counts: dict[str, Any] | None = None) -> None:
        frame = frame[self.columns]
        if self.format in ("csv", "tsv"):
            self.stream.write(_csv_text(frame, header=not self._started, delimiter="," if self.format == "csv" else "\t"))
        elif self.format == "jsonl":
            self.stream.write(_jsonl_text(frame))
        elif len(frame):
            # split on "\n" only: str.splitlines() also splits on U+2028, U+0085 and the like,
            # which JSON keeps raw inside strings (a comment's text would be cut in two)
            body = ",\n".join(_jsonl_text(frame)[:-1].split("\n"))
            self.stream.write(("[\n" if not self._started else ",\n") + body)
        self._started = self._started or self.format != "json" or bool(len(frame))
        self.stream.flush()
        self.rows_done += rows
        if counts is not None:
            self.counts = counts

    def finish(self) -> None:
        if self.format == "json":
            self.stream.write("\n]\n" if self._started else "[]\n")
        elif self.format in ("csv", "tsv") and not self._started:
            self.stream.write(_csv_text(pd.DataFrame(columns=self.columns), header=True,
                                        delimiter="," if self.format == "csv" else "\t"))
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()

    discard = close

    def stop(self, reason: str) -> None:
        self.close()
