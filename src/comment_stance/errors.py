"""Errors a user can fix. The CLI prints them as one line plus a hint and exits with code 1."""

from __future__ import annotations


class StanceError(Exception):
    """A known, user-fixable problem.

    ``str(error)`` is the one-line message (it names the file and row when there is one);
    ``error.hint`` says how to fix it.
    """

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # the CLI joins message and hint on one line
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class DataError(StanceError):
    """Input data that cannot be read or does not validate."""


class ModelError(StanceError):
    """A model folder or model option that cannot be used."""


class OutputError(StanceError):
    """An output path that would be clobbered or cannot be written."""


class ConfigError(StanceError):
    """An experiment config that cannot be used; the message names the file and the key."""
