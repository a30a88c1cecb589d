"""Which format a comment file is in: one definition for training data and for scoring.

``stance train --data FILE`` and ``stance predict FILE`` both ask :func:`detect_format`, so they
accept the same extensions; training reads only the table formats (:data:`TABLE_FORMATS`), since
platform exports carry no labels.

    >>> detect_format("tests/fixtures/exports/reddit.ndjson")   # .ndjson, told apart by its content
    'reddit'
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import DataError

#: input formats :func:`comment_stance.readers.read_chunks` understands
INPUT_FORMATS = ("csv", "tsv", "jsonl", "parquet", "disqus", "wordpress", "reddit", "article")
#: formats that hold a table of named columns (the ones training and evaluation read)
TABLE_FORMATS = ("csv", "tsv", "jsonl", "parquet")
#: file suffix -> format ("xml" is told apart by its content: Disqus or WordPress)
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xml": "xml",
    ".txt": "article",
}
#: the line of an article page that starts its comments ("5 Comments")
COMMENTS_HEADER = re.compile(r"^\s*(\d[\d,.]*)\s+comments?\s*$", re.IGNORECASE)


def detect_format(path: str | Path, forced: str | None = None) -> str:
    """The input format of ``path``: ``forced`` when given, else from the extension and content.

    >>> detect_format("tests/fixtures/exports/comments.csv"), detect_format("any-name.txt", "jsonl")
    ('csv', 'jsonl')
    """
    path = Path(path)
    if forced is not None:
        if forced not in INPUT_FORMATS:
            raise DataError(f"unknown input format '{forced}'", f"use one of: {', '.join(INPUT_FORMATS)}")
        return forced
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a file", "pass one file of comments")
    if not path.is_file():
        raise DataError(f"{path}: no such file", "check the path")
    with open(path, "rb") as handle:
        head = handle.read(64 * 1024)
    kind = EXTENSIONS.get(path.suffix.lower())
    if kind in ("csv", "tsv", "parquet"):
        return kind
    if kind is None:
        kind = _sniff(head)
        if kind is None:
            raise DataError(f"{path}: cannot tell the format from the extension '{path.suffix or '(none)'}' "
                            "or the content", f"pass --format (one of: {', '.join(INPUT_FORMATS)})")
        if kind in ("csv", "tsv", "parquet"):
            return kind
    if kind == "xml":
        return _xml_kind(path, head)
    if kind == "jsonl":
        if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
            raise DataError(f"{path}: one JSON array, not JSON lines",
                            "write one JSON object per line (e.g. jq -c '.[]' FILE > FILE.jsonl)")
        return "reddit" if _looks_like_reddit(head) else "jsonl"
    return kind  # article


def table_format(path: str | Path) -> str:
    """The format of a file of labelled comments: one of :data:`TABLE_FORMATS` (Reddit NDJSON
    is read as JSON lines); a platform export is refused with the reason."""
    path = Path(path)
    if path.suffix.lower() not in EXTENSIONS and path.is_file():
        with open(path, "rb") as handle:
            if _sniff(handle.read(64 * 1024)) is None:
                raise DataError(f"{path}: unknown file type '{path.suffix or '(none)'}'",
                                "use one of .jsonl, .csv, .tsv or .parquet")
    fmt = detect_format(path)
    if fmt == "reddit":
        return "jsonl"
    if fmt not in TABLE_FORMATS:
        raise DataError(f"{path}: a {fmt} export has no labels to train or evaluate on",
                        "give a .jsonl, .csv, .tsv or .parquet file with text and label columns "
                        "(stance predict scores exports)")
    return fmt


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"PAR1"):
        return "parquet"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        return "xml"
    if text.startswith(b"{"):
        return "jsonl"
    decoded = head.decode("utf-8", errors="replace")
    if any(COMMENTS_HEADER.match(line) for line in decoded.splitlines()):
        return "article"
    first = decoded.splitlines()[0] if decoded else ""
    if "\t" in first:
        return "tsv"
    if "," in first:
        return "csv"
    return None


def _xml_kind(path: Path, head: bytes) -> str:
    if b"<disqus" in head:
        return "disqus"
    if b"wordpress.org/export/" in head:
        return "wordpress"
    raise DataError(f"{path}: an XML file that is neither a Disqus export nor a WordPress WXR export",
                    "pass --format disqus or --format wordpress if it is one")


def _looks_like_reddit(head: bytes) -> bool:
    for line in head.splitlines():
        if line.strip():
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):  # RecursionError: a line nested too deeply
                return False
            if isinstance(record, dict) and record.get("kind") == "t1" and isinstance(record.get("data"), dict):
                record = record["data"]
            return isinstance(record, dict) and "body" in record and ("link_id" in record or "parent_id" in record)
    return False
