"""Reading and validating labelled comment data.

A *comment table* is a :class:`pandas.DataFrame` with canonical columns: ``text`` (required),
``label`` (required for training and evaluation), and the optional ``id``, ``target``,
``article_id``, ``parent_id`` and ``author``. Files in other layouts are mapped onto these names
with :class:`Columns`.

A *dataset folder* holds ``train``/``dev``/``test`` files (any supported format) and is addressed
by its folder name::

    >>> from comment_stance.data import load_dataset
    >>> ds = load_dataset("data/processed/random")
    >>> len(ds.train), len(ds.dev), len(ds.test)
    (1768, 379, 379)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import pandas as pd

from .errors import DataError
from .formats import EXTENSIONS, TABLE_FORMATS, table_format

#: file suffixes of labelled data, mapped to a format name (the same map ``stance predict`` uses)
FORMATS = {suffix: kind for suffix, kind in EXTENSIONS.items() if kind in TABLE_FORMATS}
SPLITS = ("train", "dev", "test")
#: the shipped corpus, relative to the repository root (the current folder for the CLI)
DEFAULT_DATASET = Path("data") / "processed" / "random"
OPTIONAL_COLUMNS = ("id", "target", "article_id", "parent_id", "author")


@dataclass(frozen=True)
class Columns:
    """Names of the columns in a file that hold each canonical field.

    >>> Columns(text="body", label="stance").as_mapping()["body"]
    'text'
    """

    text: str = "text"
    label: str = "label"
    id: str = "id"
    target: str = "target"
    article_id: str = "article_id"
    parent_id: str = "parent_id"
    author: str = "author"

    def as_mapping(self) -> dict[str, str]:
        """Source column name -> canonical name, for the fields whose names differ or not."""
        return {getattr(self, f.name): f.name for f in fields(self)}


@dataclass
class Dataset:
    """The splits of one dataset; ``dev`` and ``test`` may be missing."""

    train: pd.DataFrame | None
    dev: pd.DataFrame | None = None
    test: pd.DataFrame | None = None
    source: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)

    def split(self, name: str) -> pd.DataFrame:
        frame = getattr(self, name, None)
        if frame is None:
            where = self.source or "the dataset"
            have = ", ".join(s for s in SPLITS if getattr(self, s) is not None) or "none"
            raise DataError(
                f"{where}: there is no '{name}' split",
                f"splits found: {have}; add a {name}.jsonl/.csv/.parquet file or choose another split",
            )
        return frame


def _decode(path: Path, encoding: str | None = None) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode(encoding or "utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}: line {line}: bytes that are not {encoding or 'UTF-8'} (at byte {exc.start})",
            "re-save the file as UTF-8, or give its encoding (encoding='cp1252')",
        ) from None
    except LookupError:
        raise DataError(f"unknown encoding '{encoding}'", "use a Python codec name such as utf-8 or cp1252") from None


def _read_jsonl(path: Path, encoding: str | None = None) -> tuple[pd.DataFrame, list[int]]:
    records, lines = [], []
    for number, line in enumerate(_decode(path, encoding).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}: line {number}: not valid JSON ({exc.msg})",
                "each line must hold one JSON object",
            ) from None
        except RecursionError:
            raise DataError(f"{path}: line {number}: nested too deeply to read",
                            "each line must hold one JSON object of comment fields") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}: line {number}: expected a JSON object, found {type(record).__name__}",
                            "each line must hold one JSON object")
        records.append(record)
        lines.append(number)
    return pd.DataFrame.from_records(records), lines


def _read_delimited(path: Path, sep: str, encoding: str | None = None) -> tuple[pd.DataFrame, list[int]]:
    import io

    text = _decode(path, encoding)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: cannot parse ({exc})".replace("\n", " "),
                        "check quoting and the number of fields per row") from None
    # row numbers as a spreadsheet shows them: the header is row 1
    return frame, list(range(2, len(frame) + 2))


def _read_parquet(path: Path) -> tuple[pd.DataFrame, list[int]]:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"{path}: cannot read Parquet ({exc})", "check that the file is complete") from None
    return frame, list(range(1, len(frame) + 1))


def read_table(path: str | Path, encoding: str | None = None) -> tuple[pd.DataFrame, list[int], str]:
    """Read a file as it is. Returns the frame, the row number of each record as a user would
    find it in the file (JSONL: line; CSV/TSV: spreadsheet row; Parquet: 1-based row), and the
    word used for those numbers. ``encoding`` is that of a text file (default UTF-8)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file", "check the path")
    fmt = table_format(path)
    if fmt == "jsonl":
        frame, rows = _read_jsonl(path, encoding)
        return frame, rows, "line"
    if fmt in ("csv", "tsv"):
        frame, rows = _read_delimited(path, "," if fmt == "csv" else "\t", encoding)
        return frame, rows, "row"
    frame, rows = _read_parquet(path)
    return frame, rows, "row"


def read_comments(
    path: str | Path,
    columns: Columns | None = None,
    *,
    require_label: bool = True,
    encoding: str | None = None,
) -> pd.DataFrame:
    """Read one file of comments into a validated comment table.

    Every problem is reported as a :class:`DataError` naming the file, the row and the fix.

    >>> frame = read_comments("tests/fixtures/tiny/train.jsonl")
    >>> list(frame.columns)[:3]
    ['id', 'text', 'label']
    """
    path = Path(path)
    columns = columns or Columns()
    frame, rows, unit = read_table(path, encoding)
    mapping = columns.as_mapping()
    needed = [columns.text] + ([columns.label] if require_label else [])
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        flag = {columns.text: "--text-col", columns.label: "--label-col"}
        found = ", ".join(map(str, frame.columns)) or "none"
        raise DataError(
            f"{path}: missing column '{missing[0]}' (columns found: {found})",
            f"rename the column or pass {flag[missing[0]]} NAME",
        )
    keep = {src: dst for src, dst in mapping.items() if src in frame.columns}
    table = frame[list(keep)].rename(columns=keep).copy()
    table.attrs["source"] = str(path)
    table.attrs["rows"] = rows
    table.attrs["unit"] = unit
    validate(table, path, rows, unit, require_label=require_label)
    if "id" not in table.columns:
        table.insert(0, "id", [str(r) for r in rows])
    else:
        table["id"] = table["id"].map(str)
    for name in ("target", "article_id", "parent_id", "author"):
        if name in table.columns:
            table[name] = table[name].map(_optional_str)
    ordered = [c for c in ("id", "text", "label", *OPTIONAL_COLUMNS[1:]) if c in table.columns]
    extra = [c for c in table.columns if c not in ordered]
    return table[ordered + extra].reset_index(drop=True)


def _optional_str(value) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return None
    return str(value)


def validate(table: pd.DataFrame, path: Path, rows: list[int], unit: str, *, require_label: bool = True) -> None:
    """Raise :class:`DataError` for the first row that cannot be used."""
    if len(table) == 0:
        raise DataError(f"{path}: the file holds no comments", "check that the right file was given")
    for position, value in enumerate(table["text"]):
        if not isinstance(value, str):
            kind = "missing" if value is None or (isinstance(value, float) and pd.isna(value)) else type(value).__name__
            raise DataError(f"{path}: {unit} {rows[position]}: text is {kind}, not a string",
                            "every comment needs its text as a string")
        if not value.strip():
            raise DataError(f"{path}: {unit} {rows[position]}: empty text",
                            "remove the row or fill in the comment text")
    if require_label:
        for position, value in enumerate(table["label"]):
            if not isinstance(value, str) or not value.strip():
                raise DataError(f"{path}: {unit} {rows[position]}: missing label",
                                "every training or evaluation row needs a label")
    if "id" in table.columns:
        seen: dict[str, int] = {}
        for position, value in enumerate(table["id"]):
            key = str(value)
            if key in seen:
                raise DataError(
                    f"{path}: {unit} {rows[position]}: duplicate id '{key}' (first at {unit} {seen[key]})",
                    "ids must be unique within a file",
                )
            seen[key] = rows[position]


def find_split_file(folder: Path, split: str) -> Path | None:
    for candidate in sorted(folder.iterdir()):
        if candidate.is_file() and candidate.name.split(".")[0] == split and candidate.suffix.lower() in FORMATS:
            return candidate
    return None


def load_dataset(path: str | Path | None = None, columns: Columns | None = None, *,
                 encoding: str | None = None) -> Dataset:
    """Load a dataset folder (``train``/``dev``/``test`` files) or one file (used as ``train``).

    With no path, the shipped corpus in ``data/processed/random`` is used. ``encoding`` is that of
    CSV/TSV/JSON-lines files (default UTF-8).
    """
    path = Path(path) if path is not None else DEFAULT_DATASET
    if not path.exists():
        if path == DEFAULT_DATASET:
            raise DataError(
                f"no --data given and the shipped dataset {DEFAULT_DATASET} is not in the current folder",
                "run from the repository root or pass --data PATH",
            )
        raise DataError(f"{path}: no such file or folder", "check the path")
    if path.is_file():
        return Dataset(train=read_comments(path, columns, encoding=encoding), source=path, files={"train": path})
    files = {s: f for s in SPLITS if (f := find_split_file(path, s)) is not None}
    if not files:
        raise DataError(f"{path}: no train/dev/test files in this folder",
                        "name the files train.jsonl, dev.jsonl, test.jsonl (or .csv/.tsv/.parquet)")
    frames = {s: read_comments(f, columns, encoding=encoding) for s, f in files.items()}
    return Dataset(source=path, files=files, **{s: frames.get(s) for s in SPLITS})


def table_sha256(table: pd.DataFrame) -> str:
    """A hash of the rows a model was trained on (id, text, target, label), independent of file format."""
    digest = hashlib.sha256()
    cols = [c for c in ("id", "text", "target", "label") if c in table.columns]
    for record in table[cols].itertuples(index=False):
        digest.update(json.dumps(list(record), ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def with_parent_text(table: pd.DataFrame, *context: pd.DataFrame) -> pd.DataFrame:
    """Add ``parent_text`` for replies whose parent is in ``table`` or in the ``context`` tables."""
    out = table.copy()
    if "parent_id" not in out.columns:
        out["parent_text"] = None
        return out
    lookup: dict[str, str] = {}
    for frame in (*context, table):
        if "id" in frame.columns:
            lookup.update(zip(frame["id"].astype(str), frame["text"]))
    out["parent_text"] = [lookup.get(p) if p else None for p in out["parent_id"]]
    return out


def split_dev(table: pd.DataFrame, fraction: float = 0.15, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Carve a stratified dev split out of ``table``."""
    from sklearn.model_selection import train_test_split

    counts = table["label"].value_counts()
    small = counts[counts < 2]
    if len(small):
        source = table.attrs.get("source", "the training data")
        raise DataError(
            f"{source}: label '{small.index[0]}' has {int(small.iloc[0])} example(s), too few to split off a dev set",
            "add examples of that label, give a dev file, or remove the label",
        )
    n_dev = max(int(round(len(table) * fraction)), len(counts))
    train, dev = train_test_split(table, test_size=n_dev, stratify=table["label"], random_state=seed)
    return train.reset_index(drop=True), dev.reset_index(drop=True)
