"""Fault injection for `stance predict`: the process is killed (SIGKILL, so nothing can clean up)
at every stage of writing, then `--resume` must give exactly the output of an uninterrupted run,
and no file under the final name may ever be incomplete.

Two kinds of kill, both from outside the library:
- at a named stage, by a child script that wraps the writer's methods before running the CLI (the
  library has no test hooks): half a chunk written, chunk written but state not saved, state file
  half written, before and after the final rename, inside the Parquet merge;
- at seeded random delays after the job has started (marked slow: several runs).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import comment_stance as cs
from comment_stance.cli import app

from .conftest import FIXTURES, REPO

ROWS, CHUNK = 3000, 200
runner = CliRunner()

# The child: wraps one step of the writer so that the process kills itself there, then runs the
# CLI exactly as a user would. STAGE and N come from the command line, not from the library.
CHILD = r"""
import os, signal, sys
from pathlib import Path
from comment_stance import writers
from comment_stance.writers import ResumableOutput

stage, n, final_name = sys.argv[1], int(sys.argv[2]), sys.argv[-1]
calls = {"n": 0}

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def nth():
    calls["n"] += 1
    return calls["n"] == n

if stage == "half-chunk":          # the n-th chunk is half on disk when the process dies
    real_write = ResumableOutput.write
    def write(self, frame, *, rows, counts=None):
        if nth():
            if self.format == "parquet":
                part = self.partial / f"part-{self._position:08d}.parquet"
                part.with_suffix(".tmp").write_bytes(b"PAR1 half")
            else:
                text = writers._csv_text(frame[self.columns], header=self._position == 0, delimiter=",") \
                    if self.format == "csv" else writers._jsonl_text(frame[self.columns])
                self._handle.write(text.encode()[: len(text) // 2]); self._handle.flush()
            die()
        return real_write(self, frame, rows=rows, counts=counts)
    ResumableOutput.write = write
elif stage == "before-state":      # the n-th chunk is written whole, its state not yet saved
    real_save = ResumableOutput._save_state
    def save(self):
        if self.rows_done and nth():
            die()
        return real_save(self)
    ResumableOutput._save_state = save
elif stage == "half-state":        # the state file's staging copy is half written
    real_write_text = Path.write_text
    def write_text(self, data, *a, **k):
        if self.name.endswith(".partial.json.tmp") and nth():
            real_write_text(self, data[: len(data) // 2]); die()
        return real_write_text(self, data, *a, **k)
    Path.write_text = write_text
elif stage in ("before-rename", "after-rename", "merge"):
    real_replace = os.replace
    def replace(src, dst, *a, **k):
        final = os.path.basename(str(dst)) == final_name
        if stage == "before-rename" and final:
            die()
        if stage == "merge" and str(src).endswith("merged.tmp"):
            die()
        result = real_replace(src, dst, *a, **k)
        if stage == "after-rename" and final:
            die()
        return result
    os.replace = replace

from comment_stance.cli import app
sys.argv = ["stance", "predict", *sys.argv[3:-1]]
app()
"""


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A model, an input of a few thousand rows, and the output of an uninterrupted run per format."""
    folder = tmp_path_factory.mktemp("faults")
    model = folder / "model"
    cs.train(FIXTURES / "tiny", "tfidf-logreg", model)
    source = folder / "in.csv"
    with open(source, "w", encoding="utf-8") as handle:
        handle.write("id,text,target,parent_id\n")
        for i in range(ROWS):
            text = ["Sign it now.", "Only with monitors, \"maybe\".", "Toothless,\nagain.", ""][i % 4]
            handle.write(f'c{i},"{text.replace(chr(34), chr(34) * 2)} #{i}",Pact {"AB"[i % 2]},{f"c{i - 1}" if i % 5 == 4 else ""}\n')
    references = {}
    for suffix in (".csv", ".jsonl", ".parquet"):
        out = folder / f"reference{suffix}"
        result = predict(model, source, out)
        assert result.exit_code == 0, result.output
        references[suffix] = out.read_bytes()
    return {"model": model, "source": source, "references": references}


def predict(model, source, out, *extra):
    return runner.invoke(app, ["predict", "--model", str(model), str(source), "--out", str(out), "--chunk-size",
                               str(CHUNK), "--review-below", "0.5", "--keep", "text", "--quiet", *extra])


def child(job, out: Path, stage: str, n: int) -> subprocess.CompletedProcess:
    args = ["--model", str(job["model"]), str(job["source"]), "--out", str(out), "--chunk-size", str(CHUNK),
            "--review-below", "0.5", "--keep", "text", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-c", CHILD, stage, str(n), *args, out.name], cwd=out.parent,
                          capture_output=True, env=env, timeout=300)


def check_never_incomplete(out: Path, reference: bytes) -> None:
    """A file under the final name is complete, whatever happened."""
    if out.exists():
        assert out.read_bytes() == reference


def resume_and_compare(job, out: Path) -> str:
    reference = job["references"][out.suffix]
    check_never_incomplete(out, reference)
    if out.exists():  # killed after the rename: the job is done; a resume must not redo or clobber it
        result = predict(job["model"], job["source"], out, "--resume")
        assert result.exit_code == 1 and "already exists" in result.output
        assert out.read_bytes() == reference
        return "output already complete; --resume refuses to clobber it"
    result = predict(job["model"], job["source"], out, "--resume")
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == reference  # byte for byte, Parquet included
    leftovers = sorted(p.name for p in out.parent.iterdir() if p.name.startswith(out.name + "."))
    assert leftovers == [], leftovers
    return "resumed; identical"


# each case starts a process (several seconds on a busy machine): three run by default, the rest
# with the slow tests
STAGES = [
    ("half-chunk", 3, ".csv"), ("before-state", 2, ".parquet"), ("before-rename", 1, ".jsonl"),
    *[pytest.param(*case, marks=pytest.mark.slow) for case in [
        ("half-chunk", 1, ".jsonl"), ("half-chunk", 4, ".parquet"), ("before-state", 5, ".csv"),
        ("half-state", 6, ".jsonl"), ("before-rename", 1, ".csv"), ("before-rename", 1, ".parquet"),
        ("after-rename", 1, ".jsonl"), ("after-rename", 1, ".parquet"), ("merge", 1, ".parquet")]],
]


@pytest.mark.parametrize("stage, n, suffix", STAGES)
def test_killed_at_a_stage_then_resumed(job, tmp_path, stage, n, suffix):
    out = tmp_path / f"out{suffix}"
    killed = child(job, out, stage, n)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    resume_and_compare(job, out)


def rows_done(state: Path) -> int | None:
    try:
        return json.loads(state.read_text())["rows_done"]
    except (OSError, ValueError, KeyError):
        return None


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_killed_at_a_random_moment_then_resumed(job, tmp_path, seed):
    """SIGKILL from outside at a seeded random moment: once the job has passed a random row
    count, after a random few milliseconds more (so anywhere inside a chunk's read, score, write
    or state save)."""
    rng = random.Random(seed)
    suffix = [".csv", ".jsonl", ".parquet"][seed % 3]
    target, jitter = rng.randrange(0, ROWS - CHUNK, CHUNK), rng.uniform(0, 0.3)
    out = tmp_path / f"out{suffix}"
    state = tmp_path / f"out{suffix}.partial.json"
    start = "import sys; from comment_stance.cli import app; sys.argv[0] = 'stance'; app()"
    args = [sys.executable, "-c", start, "predict", "--model", str(job["model"]), str(job["source"]),
            "--out", str(out), "--chunk-size", str(CHUNK), "--review-below", "0.5", "--keep", "text", "--quiet"]
    process = subprocess.Popen(args, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        done = rows_done(state)
        if done is not None and done >= target:
            break
        time.sleep(0.005)
    time.sleep(jitter)
    process.send_signal(signal.SIGKILL)
    assert process.wait() in (-signal.SIGKILL, 0)  # killed, or finished before the kill came
    print(f"seed {seed} {suffix}: target {target} rows + {jitter * 1000:.0f} ms: killed with "
          f"rows_done={rows_done(state)}, final exists={out.exists()}")
    resume_and_compare(job, out)
