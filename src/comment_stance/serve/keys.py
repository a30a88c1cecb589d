"""API keys, stored hashed: the service never keeps a key, only its SHA-256.

A key file has one entry per line, ``sha256:<hex digest>`` optionally followed by a space and a
note (who the key is for); blank lines and lines starting with ``#`` are ignored. Keys are long
random tokens (:func:`new_key`), so a plain SHA-256 is enough to make a stolen key file useless;
every presented key is compared with every stored digest in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from ..errors import DataError

PREFIX = "sha256:"


def hash_key(key: str) -> str:
    return PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random key (256 bits, URL-safe)."""
    return "stk_" + secrets.token_urlsafe(32)


def read_key_file(path: str | Path) -> list[str]:
    """The digests in a key file; raises :class:`DataError` naming the line of a bad entry."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such key file", "create one with 'stance serve --new-key FILE'")
    digests = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        digest = entry.split()[0]
        hexpart = digest[len(PREFIX):]
        if not digest.startswith(PREFIX) or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
            raise DataError(f"{path}: line {number}: not 'sha256:<64 hex digits>'",
                            "store hashed keys only; add one with 'stance serve --new-key FILE'")
        digests.append(digest)
    if not digests:
        raise DataError(f"{path}: holds no keys", "add one with 'stance serve --new-key FILE'")
    return digests


def add_key(path: str | Path, note: str = "") -> str:
    """Create a key, append its digest to ``path`` and return the key (shown once, never stored)."""
    path = Path(path)
    key = new_key()
    line = hash_key(key) + (f" {note}" if note else "") + "\n"
    with open(path, "a", encoding="utf-8") as out:
        out.write(line)
    path.chmod(0o600)
    return key


class KeyCheck:
    """Checks a presented key against stored digests, in constant time per digest."""

    def __init__(self, digests: list[str]):
        self.digests = [d.encode() for d in digests]

    def __call__(self, key: str | None) -> bool:
        if not key:
            return False
        presented = hash_key(key).encode()
        found = False
        for digest in self.digests:  # no early exit: the time does not depend on which key matched
            found |= hmac.compare_digest(presented, digest)
        return found
