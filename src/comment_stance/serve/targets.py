"""Target mapping: moderators know a comment's article or thread, the model knows pacts.

A mapping file is a JSON object from an article or thread id, or an article title, to the target
name the model was trained on::

    {"art-2291": "Pact A", "Why the pact matters": "Pact A", "thread-17": "Pact B"}

:meth:`TargetMap.resolve` looks a comment up by its ``article_id`` first, then by its ``target``
(or title) field; a target that is no key is taken as already canonical. A comment with neither
stays unresolved (``None``), and the scoring core flags it rather than scoring it as if the
target did not matter.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from ..errors import DataError

MAX_KEY_CHARS = 500


def _check(mapping: Any, where: str) -> dict[str, str]:
    if not isinstance(mapping, dict):
        raise DataError(f"{where}: the target mapping must be a JSON object of \"article id or title\": \"target\"",
                        'for example {"art-1": "Pact A"}')
    for key, value in mapping.items():
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_CHARS:
            raise DataError(f"{where}: key {key!r} is not a non-empty article id or title of at most "
                            f"{MAX_KEY_CHARS} characters", "fix or remove that entry")
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"{where}: the target of '{key}' is {value!r}, not a non-empty name",
                            "give the target name the model was trained on, e.g. \"Pact A\"")
    return {key.strip(): value.strip() for key, value in mapping.items()}


class TargetMap:
    """Article/thread ids and titles to targets, kept in a JSON file when ``path`` is given."""

    def __init__(self, path: str | Path | None = None, mapping: dict[str, str] | None = None):
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self.mapping: dict[str, str] = _check(mapping or {}, "targets")
        if self.path is not None and self.path.exists():
            try:
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise DataError(f"{self.path}: not valid JSON ({exc})",
                                'write the mapping as {"article id or title": "target"}') from None
            self.mapping = _check(loaded, str(self.path))

    def resolve(self, article_id: str | None, target: str | None) -> str | None:
        """The comment's target, or ``None`` when neither its article nor its target field says."""
        mapping = self.mapping
        if article_id is not None and article_id in mapping:
            return mapping[article_id]
        if target:
            return mapping.get(target, target)
        return None

    def replace(self, mapping: Any) -> dict[str, str]:
        """Replace the whole mapping (validated first) and write it to the file atomically."""
        checked = _check(mapping, "targets")
        with self._lock:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                handle, staging = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
                try:
                    with os.fdopen(handle, "w", encoding="utf-8") as out:
                        json.dump(checked, out, indent=2, ensure_ascii=False, sort_keys=True)
                        out.write("\n")
                        out.flush()
                        os.fsync(out.fileno())
                    os.replace(staging, self.path)
                except BaseException:
                    Path(staging).unlink(missing_ok=True)
                    raise
            self.mapping = checked
        return checked
