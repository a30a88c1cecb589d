"""Benchmarks of ``stance serve`` (issue 10): a real server process, real HTTP clients.

Printed side by side, in one run, for each model (TF-IDF; the transformer when given or trained)
and with batching on and off:

1. throughput of ``POST /v1/score`` (one comment per request) under 1, 8 and 32 concurrent
   clients, against the same model's in-process ``predict`` on the same comments, as a ratio
   (the issue asks >= 0.7x for the transformer with batching on);
   Batching "on" waits up to --batch-wait-ms for more requests; "no wait" takes only what queued
   up while the model was busy; "off" is --max-batch 1.
2. p50/p95 latency of a single-comment request at 8 concurrent clients (the issue asks
   <= 50 ms for TF-IDF, <= 150 ms for the transformer, on 2 cores);
3. the server's resident memory after scoring ``--rss-small`` and then ``--rss-large`` comments
   (the issue asks for it to stay flat).

The load average is printed with every measurement: numbers taken on a busy machine are not
comparable. The clients run in this process (asyncio streams, one keep-alive connection each); the server is a separate
``stance serve`` process bound to 127.0.0.1, so its memory is its own.

Examples::

    python bench/bench_serve.py --requests 60 --rss-small 200 --rss-large 1000 --skip-transformer   # smoke
    python bench/bench_serve.py --tfidf models/tfidf-logreg --transformer models/transformer          # the real one
    python bench/bench_serve.py --train-transformer --requests 400

No numbers are asserted here; tests never time anything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "fixtures" / "tiny"


from bench_scoring import _phrases as phrases  # the same synthetic comments as the scoring benchmark


def comments(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    words = phrases()
    return [{"id": f"c{i}", "text": " ".join(rng.choice(words) for _ in range(rng.randint(1, 3))),
             "target": "Pact A" if i % 2 else "Pact B"} for i in range(n)]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f} on {os.cpu_count()} CPUs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    """``stance serve`` in a child process on a free port."""

    def __init__(self, model: Path, *, max_batch: int, wait_ms: float, threads: int | None,
                 batch_size: int | None = None):
        self.port = free_port()
        self.db = tempfile.NamedTemporaryFile(suffix=".sqlite", delete=False).name
        args = [sys.executable, "-c", "from comment_stance.cli import main; main()", "serve", "--model", str(model),
                "--port", str(self.port), "--db", self.db, "--max-batch", str(max_batch),
                "--batch-wait-ms", str(wait_ms), "--log-level", "warning", "--max-comments", "1000",
                "--max-body-bytes", "20000000"]
        if threads:
            args += ["--threads", str(threads)]
        if batch_size:
            args += ["--batch-size", str(batch_size)]
        env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.process = subprocess.Popen(args, env=env)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait(self, timeout: float = 120) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited with code {self.process.returncode}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit("the server did not become ready")

    def calls(self) -> int:
        """Model calls the server has made so far (its batching statistics)."""
        import httpx

        return int(httpx.get(self.url + "/v1/model", timeout=10).json()["batching"]["model_calls"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        for suffix in ("", "-wal", "-shm"):
            Path(self.db + suffix).unlink(missing_ok=True)


class Connection:
    """One keep-alive HTTP/1.1 connection that posts JSON and reads the answer.

    The load generator shares the two cores with the server, so it is kept as lean as a C tool
    such as wrk: requests are encoded by hand and answers parsed only as far as the status line,
    the Content-Length header and the body (which is decoded and checked). httpx costs about as
    much CPU per request as the server does and would take cores away from the server.
    """

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        length = None
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise SystemExit(f"{path} answered without a Content-Length (status {status})")
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def drive(url: str, items: list[dict], clients: int) -> tuple[float, list[float]]:
    """Send every item as its own request from ``clients`` concurrent clients; (seconds, latencies).

    Each client holds one keep-alive connection and sends its next request when the answer to the
    last one has arrived; every answer must be a 200 with one result for the one comment.
    """
    host, port = url.removeprefix("http://").rsplit(":", 1)
    bodies = [json.dumps({"comments": [item]}).encode() for item in items]
    queue = list(reversed(bodies))
    latencies: list[float] = []
    connections = [Connection(host, int(port)) for _ in range(clients)]
    for connection in connections:
        await connection.open()

    async def worker(connection: Connection):
        while queue:
            body = queue.pop()
            started = time.perf_counter()
            status, answer = await connection.post("/v1/score", body)
            latencies.append(time.perf_counter() - started)
            if status != 200 or len(json.loads(answer)["results"]) != 1:
                raise SystemExit(f"/v1/score answered {status}: {answer[:300]!r}")

    try:
        started = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in connections))
        return time.perf_counter() - started, latencies
    finally:
        for connection in connections:
            await connection.close()


class InProcess:
    """The same model's in-process predict on the same comments, loaded once in this process.

    The machine's speed drifts by a third within minutes, so a reference measured once at the
    start would make every later ratio wrong by that much: :meth:`rate` is measured again right
    before and right after each server row, and the row is divided by their mean.
    """

    def __init__(self, model_dir: Path, items: list[dict], threads: int | None):
        import pandas as pd

        from comment_stance import load_model
        from comment_stance.scoring import predict

        self.predict = predict
        self.model = load_model(model_dir, threads=threads)
        self.table = pd.DataFrame({"text": [c["text"] for c in items], "target": [c["target"] for c in items]})
        self.predict(self.model, self.table.head(8))  # warm up

    def rate(self, k: int | None = None) -> float:
        """Comments per second: all at once (``k=None``, the ceiling, length-sorted batches of the
        model's ``inference_batch_size``), or in calls of ``k`` comments (the most that ``k``
        one-comment clients can give one batch)."""
        step = k or len(self.table)
        started = time.perf_counter()
        for start in range(0, len(self.table), step):
            self.predict(self.model, self.table.iloc[start:start + step])
        return len(self.table) / (time.perf_counter() - started)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_model(name: str, model_dir: Path, args) -> None:
    if args.memory_only:
        print(f"\n## {name} ({model_dir})")
        memory(name, model_dir, args)
        return
    items = comments(args.requests)
    reference = InProcess(model_dir, items, args.threads)
    print(f"\n## {name} ({model_dir})\n"
          "x in-process divides by in-process predict on the same comments all at once, measured right "
          "before and after the row (its mean in the last column)")
    for k in [c for c in args.clients if c > 1]:
        before, rate, after = reference.rate(), reference.rate(k), reference.rate()
        print(f"in-process predict in calls of {k} comments: {rate:,.0f} comments/s "
              f"({rate / ((before + after) / 2):.2f}x all at once, {(before + after) / 2:,.0f}/s)  [{load()}]")
    print(f"{'batching':<10}{'clients':>8}{'req/s':>10}{'x in-process':>14}{'p50 ms':>9}{'p95 ms':>9}"
          f"{'per call':>9}{'in-proc/s':>11}  load")
    modes = [("on", args.max_batch, args.batch_wait_ms), ("no wait", args.max_batch, 0.0), ("off", 1, 0.0)]
    for label, max_batch, wait_ms in modes:
        if label == "no wait" and args.batch_wait_ms == 0:
            continue
        if label != "on" and args.only_on:
            continue
        server = Server(model_dir, max_batch=max_batch, wait_ms=wait_ms, threads=args.threads,
                        batch_size=args.batch_size)
        try:
            server.wait()
            asyncio.run(drive(server.url, comments(32, seed=1), 8))  # warm up
            for clients in args.clients:
                before, calls = reference.rate(), server.calls()
                seconds, latencies = asyncio.run(drive(server.url, items, clients))
                per_call = len(items) / max(1, server.calls() - calls)  # comments per model call
                base = (before + reference.rate()) / 2
                rate = len(items) / seconds
                p50, p95 = pct(latencies, 0.5) * 1000, pct(latencies, 0.95) * 1000
                print(f"{label:<10}{clients:>8}{rate:>10,.0f}{rate / base:>14.2f}{p50:>9.1f}{p95:>9.1f}"
                      f"{per_call:>9.1f}{base:>11,.0f}  {load()}")
        finally:
            server.stop()
    if args.rss_large:
        memory(name, model_dir, args)


def memory(name: str, model_dir: Path, args) -> None:
    import httpx

    server = Server(model_dir, max_batch=args.max_batch, wait_ms=args.batch_wait_ms, threads=args.threads)
    try:
        server.wait()
        done, marks = 0, {}
        batch = 100
        with httpx.Client(base_url=server.url, timeout=300) as client:
            for goal in (args.rss_small, args.rss_large):
                while done < goal:
                    size = min(batch, goal - done)
                    r = client.post("/v1/score", json={"comments": comments(size, seed=done)})
                    if r.status_code != 200:
                        raise SystemExit(f"/v1/score answered {r.status_code}: {r.text[:300]}")
                    done += size
                marks[goal] = rss_mib(server.process.pid)
        small, large = marks[args.rss_small], marks[args.rss_large]
        print(f"server RSS after {args.rss_small:,} comments: {small:.0f} MiB; after {args.rss_large:,}: {large:.0f} MiB "
              f"({large / small:.2f}x)  [{load()}]")
    finally:
        server.stop()


def ensure_model(path: str | None, preset: str, folder: Path, params: dict) -> Path:
    if path:
        return Path(path)
    from comment_stance.training import train

    out = folder / preset
    print(f"training a {preset} model on {TINY} (pass --{'tfidf' if preset == 'tfidf-logreg' else 'transformer'} "
          f"DIR to use a real one)")
    train(TINY, preset, out, params=params, overwrite=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tfidf", help="TF-IDF model folder (default: train one on the tiny fixture)")
    parser.add_argument("--transformer", help="transformer model folder")
    parser.add_argument("--train-transformer", action="store_true", help="train a tiny transformer when none is given")
    parser.add_argument("--skip-transformer", action="store_true")
    parser.add_argument("--skip-tfidf", action="store_true", help="only the transformer (sizes differ per family)")
    parser.add_argument("--requests", type=int, default=2000, help="single-comment requests per measurement")
    parser.add_argument("--clients", default="1,8,32", help="concurrent clients, comma-separated")
    parser.add_argument("--max-batch", type=int, default=64, help="the server's --max-batch with batching on")
    parser.add_argument("--batch-wait-ms", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=None, help="model threads (transformer), server and in-process")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="the server's --batch-size (comments per forward pass; in-process keeps the model's)")
    parser.add_argument("--rss-small", type=int, default=1_000)
    parser.add_argument("--rss-large", type=int, default=100_000, help="0 skips the memory measurement")
    parser.add_argument("--only-on", action="store_true", help="only batching on (the default settings)")
    parser.add_argument("--memory-only", action="store_true",
                        help="only the memory measurement (it does not depend on the machine's load)")
    args = parser.parse_args()
    args.clients = [int(c) for c in args.clients.split(",") if c.strip()]
    sys.path.insert(0, str(REPO / "src"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    print(f"bench_serve: {args.requests} requests per run, clients {args.clients}, max batch {args.max_batch}, "
          f"wait {args.batch_wait_ms} ms  [{load()}]")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_tfidf:
            bench_model("tfidf-logreg", ensure_model(args.tfidf, "tfidf-logreg", Path(tmp), {}), args)
        if args.skip_transformer:
            return
        if not args.transformer and not args.train_transformer:
            print("\n(no transformer: pass --transformer DIR or --train-transformer)")
            return
        model = ensure_model(args.transformer, "transformer", Path(tmp),
                             {"epochs": 1, "max_length": 64, "batch_size": 8, "patience": 0})
        bench_model("transformer", model, args)


if __name__ == "__main__":
    main()
