"""Dynamic batching: comments of concurrent requests share one model call.

Each request puts its comments on an asyncio queue and awaits a future. One worker task takes the
first waiting request, then keeps gathering requests for at most ``wait_ms`` milliseconds or until
``max_batch`` comments are gathered, runs the model once on all of them in a dedicated thread
(so the event loop keeps accepting requests meanwhile), and hands each request its rows. A
request larger than ``max_batch`` runs on its own; requests are never split, so one request's
comments are always scored together.

``max_batch=1`` turns batching off: one model call per request, one at a time.

A long-running server scores batches of ever new shapes; the C allocator keeps the memory they
freed in its heaps, and a transformer server's resident memory crept up from 614 to 881 MiB within
a 100,000-comment benchmark. So after a batch, at most every ``release_s`` seconds (default 1),
the model thread hands free heap memory back to the system (:func:`release_free_memory`, glibc's
``malloc_trim``, about 3.5 ms with a transformer loaded; nothing on other C libraries).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to do
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return the C heap's free pages to the system (glibc ``malloc_trim(0)``); ``False`` where the
    C library has no such call. Memory in use is not touched."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@dataclass
class _Job:
    items: Sequence[Any]
    future: asyncio.Future
    queued: float = field(default_factory=time.perf_counter)


class Batcher:
    """Gathers the items of concurrent :meth:`submit` calls into calls of ``run(items) -> results``.

    ``run`` must return one result per item, in order. It is called in one worker thread, never
    twice at the same time, so a model that is not thread-safe is safe here.
    """

    def __init__(self, run: Callable[[list[Any]], list[Any]], *, max_batch: int = 64, wait_ms: float = 5.0,
                 release_s: float | None = 1.0):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if wait_ms < 0:
            raise ValueError("wait_ms must not be negative")
        self.run = run
        self.max_batch = max_batch
        self.wait_s = wait_ms / 1000
        self.release_s = release_s
        self._released = time.monotonic()
        self.releases = 0        # times free memory was handed back
        self._pool: ThreadPoolExecutor | None = None
        self.calls = 0           # model calls made
        self.items = 0           # items scored
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, items: Sequence[Any]) -> list[Any]:
        """Score ``items`` together with whatever else is waiting; returns their results in order."""
        if not items:
            return []
        self._ensure_worker()
        assert self._queue is not None
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(items, future))
        return await future

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The one model thread (made again after :meth:`close`, e.g. when an app is started twice)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stance-model")
        return self._pool

    async def call(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func(*args)`` in the model thread (for work that must not overlap a batch, e.g. uploads)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, func, *args)

    def _ensure_worker(self) -> None:
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done() or self._loop is not loop:
            self._loop = loop
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._work(self._queue))

    async def _work(self, queue: asyncio.Queue[_Job]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await queue.get()]
            size = len(jobs[0].items)
            deadline = loop.time() + self.wait_s
            while size < self.max_batch:
                try:
                    job = queue.get_nowait()
                except asyncio.QueueEmpty:
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    try:
                        job = await asyncio.wait_for(queue.get(), left)
                    except asyncio.TimeoutError:
                        break
                if size + len(job.items) > self.max_batch:
                    await self._run(jobs)      # the newcomer would overflow this batch: it starts the next
                    jobs, size = [job], len(job.items)
                    deadline = loop.time() + self.wait_s
                    continue
                jobs.append(job)
                size += len(job.items)
            await self._run(jobs)

    async def _run(self, jobs: list[_Job]) -> None:
        jobs = [job for job in jobs if not job.future.cancelled()]  # the client went away
        if not jobs:
            return
        items = [item for job in jobs for item in job.items]
        self.calls += 1
        self.items += len(items)
        try:
            results = await asyncio.get_running_loop().run_in_executor(self.executor, self._run_and_release, items)
            if len(results) != len(items):
                raise RuntimeError(f"the scorer returned {len(results)} results for {len(items)} items")
        except Exception as exc:  # every waiting request learns of the failure
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        start = 0
        for job in jobs:
            part = results[start:start + len(job.items)]
            start += len(job.items)
            if not job.future.done():
                job.future.set_result(part)

    def _run_and_release(self, items: list[Any]) -> list[Any]:
        """``run(items)``, then (in the same model thread, so never during a batch) free memory back
        to the system when ``release_s`` seconds have passed since the last time."""
        try:
            return self.run(items)
        finally:
            if self.release_s is not None and time.monotonic() - self._released >= self.release_s:
                self._released = time.monotonic()
                if release_free_memory():
                    self.releases += 1

    def stats(self) -> dict[str, Any]:
        return {"max_batch": self.max_batch, "wait_ms": self.wait_s * 1000, "model_calls": self.calls,
                "comments_scored": self.items,
                "memory_releases": self.releases}

    def close(self) -> None:
        if self._worker is not None and not self._worker.done():
            try:
                self._worker.cancel()
            except RuntimeError:  # its loop is already closed
                pass
        self._worker = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
