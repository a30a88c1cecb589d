"""Values typed on the command line: ``--param C=0.5`` and ``--models.svm.C 0.5`` read alike.

:func:`parse_value` is the one reading of such text, used by ``stance train --param`` and by the
dotted overrides of ``stance experiment run``.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def parse_value(text: str) -> Any:
    """A command-line value as TOML reads it; else as JSON (e.g. ``{"a": 1}``); ``true``,
    ``false``, ``none`` and ``null`` in any case as True, False, None; ``a,b`` as a list of such
    values; anything else as the string itself.

    >>> parse_value("0.5"), parse_value("true"), parse_value("[1, 3]"), parse_value("1,3"), parse_value("svm")
    (0.5, True, [1, 3], [1, 3], 'svm')
    >>> parse_value('"x y"'), parse_value("False"), parse_value("null"), parse_value('{"a": 1}')
    ('x y', False, None, {'a': 1})
    """
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        pass
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    lowered = text.strip().lower()
    if lowered in ("true", "false", "none", "null"):
        return {"true": True, "false": False}.get(lowered)
    if "," in text:
        return [parse_value(part.strip()) for part in text.split(",") if part.strip()]
    return text
