"""Checkpoints of a run in progress: every finished fold is kept beside the run folder, so that an
interrupted run (Ctrl-C, a crash, a machine that goes away) continues where it stopped.

A run to ``RUN`` keeps them in ``RUN.checkpoints/``: one JSON file per finished fold of a job
(``folds/<evaluation>/<model>/seed-<seed>/<fold>.json``, with the fold's predictions and probabilities,
or a few-shot group's scores), and the models a ``save_models`` run keeps (``models/``). Each file carries a
fingerprint of what produced it: the evaluation's settings and data hashes, the model's preset and
hyper-parameters with the seed, the fold's name and its test comments. ``stance experiment run
CONFIG --out RUN --resume`` takes every fold whose fingerprint matches instead of training it
again, refuses one whose fingerprint does not (the config or the data changed since), and trains
the rest. Without ``--resume`` a checkpoint folder left by an interrupted run is refused, unless
``--overwrite`` says to start over; ``--resume`` with nothing to resume simply starts (as
``stance predict --resume`` does). When the run folder is complete the checkpoints are deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import OutputError

SUFFIX = ".checkpoints"
MARKER = "checkpoints.json"  # written first: only a folder holding it is ever resumed or deleted


def checkpoint_folder(run_folder: str | Path) -> Path:
    """Where the checkpoints of a run to ``run_folder`` are kept."""
    run_folder = Path(run_folder)
    return run_folder.with_name(run_folder.name + SUFFIX)


def fingerprint(**parts: Any) -> str:
    """A stable SHA-256 of JSON-able ``parts`` (keys sorted; other objects by ``repr``)."""
    text = json.dumps(parts, sort_keys=True, default=repr, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Checkpoints:
    """The checkpoint folder of one run.

    A folder left by an interrupted run is the user's work: it is resumed with ``resume``, deleted
    with ``overwrite`` (start over), and otherwise refused. A folder at that path that this module
    did not write (no ``checkpoints.json``) is never resumed or deleted.
    """

    def __init__(self, run_folder: str | Path, *, resume: bool = False, overwrite: bool = False):
        self.run_folder = Path(run_folder)
        self.folder = checkpoint_folder(self.run_folder)
        self.resume = resume
        self.taken: list[dict[str, Any]] = []
        self.written = 0
        self._source: str | None = None
        exists = self.folder.exists() or self.folder.is_symlink()
        if exists and (self.folder.is_symlink() or not self.folder.is_dir()):
            raise OutputError(f"{self.folder}: is not a checkpoint folder (a file or a link)",
                              "move it away, or choose another --out")
        if not exists or not any(self.folder.iterdir()):
            return
        if not (self.folder / MARKER).is_file():
            raise OutputError(f"{self.folder}: was not written by 'stance experiment run' (no {MARKER}), so it is "
                              "neither resumed nor replaced", "move it away, or choose another --out")
        if resume:
            return
        if overwrite:  # asked to start over
            shutil.rmtree(self.folder)
        elif self.count():
            raise OutputError(f"{self.folder}: holds {self.count()} finished fold(s) of an interrupted run to "
                              f"{self.run_folder}", "add --resume to continue from them, or --overwrite to start over")

    def count(self) -> int:
        """How many finished folds the folder holds."""
        return sum(1 for _ in self.folder.glob("folds/*/*/seed-*/*.json")) if self.folder.is_dir() else 0

    def _open(self) -> None:
        if not (self.folder / MARKER).is_file():
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / MARKER).write_text(json.dumps({"run": str(self.run_folder), "created_at": _now()}) + "\n",
                                              encoding="utf-8")

    def _path(self, evaluation: str, model: str, seed: int, fold: str) -> Path:
        return self.folder / "folds" / evaluation / model / f"seed-{seed}" / f"{fold}.json"

    def model_folder(self, evaluation: str, model: str, seed: int) -> Path:
        """Where a ``save_models`` run writes the model of a fixed-split job until the run is complete."""
        self._open()
        return self.folder / "models" / evaluation / model / f"seed-{seed}"

    def load(self, evaluation: str, model: str, seed: int, fold: str, print_: str) -> dict[str, Any] | None:
        """The stored result of this fold when resuming and its fingerprint is ``print_``; ``None``
        when there is none. A stored fold with another fingerprint is refused."""
        if not self.resume:
            return None
        path = self._path(evaluation, model, seed, fold)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            stored = record["fingerprint"]
        except (ValueError, KeyError, TypeError):
            raise OutputError(f"{path}: is not a readable checkpoint",
                              "delete that file to train its fold again") from None
        if stored != print_:
            raise OutputError(f"{path}: was written for other settings (the model, seed, evaluation or data "
                              "changed since the interrupted run)",
                              "resume with the interrupted run's config and overrides, or delete that file to "
                              "train its fold again")
        self.taken.append({"evaluation": evaluation, "model": model, "seed": seed, "fold": fold,
                           "written_at": record.get("written_at"), "comment_stance": record.get("comment_stance"),
                           "source_sha256": record.get("source_sha256")})
        return record["result"]

    def save(self, evaluation: str, model: str, seed: int, fold: str, print_: str, result: dict[str, Any]) -> None:
        """Keep one finished fold (written to a temporary name and renamed, so never half a file)."""
        self._open()
        path = self._path(evaluation, model, seed, fold)
        path.parent.mkdir(parents=True, exist_ok=True)
        if self._source is None:
            from .runs import source_sha256

            self._source = source_sha256()
        record = {"fingerprint": print_, "written_at": _now(),
                  "comment_stance": __version__, "source_sha256": self._source, "result": result}
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(temporary, path)
        self.written += 1

    def summary(self, total: int) -> dict[str, Any] | None:
        """For ``run.json``: how many of ``total`` folds came from checkpoints, and when and by which
        code they were written; ``None`` when none did."""
        if not self.taken:
            return None
        stamps = sorted(t["written_at"] for t in self.taken if t["written_at"])
        return {"folds": len(self.taken), "of": total,
                "written": [stamps[0], stamps[-1]] if stamps else None,
                "comment_stance": sorted({str(t["comment_stance"]) for t in self.taken}),
                "source_sha256": sorted({str(t["source_sha256"]) for t in self.taken}),
                "taken": self.taken}

    def interrupted(self) -> int:
        """After a failed run: how many finished folds are kept; a folder with none is removed."""
        kept = self.count()
        if not kept and self.folder.is_dir():
            shutil.rmtree(self.folder, ignore_errors=True)
        return kept

    def move_models(self, staging: Path) -> None:
        """Move the models a ``save_models`` run kept here into the run folder being built."""
        saved = self.folder / "models"
        if saved.is_dir():
            shutil.move(str(saved), str(staging / "models"))

    def remove(self) -> None:
        """Delete the checkpoints once the run folder they were for is complete."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
