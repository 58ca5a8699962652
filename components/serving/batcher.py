"""Micro-batching: requests that arrive together share one forward pass.

    submit(request) --queue--> [wait up to `window` for more, up to `max_rows` rows]
        --group by Request.group()--> run(group) on the one generation thread --> each request's future

While a batch runs, new requests queue up and form the next batch, so under load batches fill without
any wait; alone, a request waits at most `window`. Generation runs on one worker thread (torch releases
the GIL, so the event loop keeps answering health checks and serving pages meanwhile); other work on the
models (encoding an uploaded reference) goes through the same thread (`run_alone`), never beside it.

The queue is bounded (`max_queue`: a full queue is `Busy`, HTTP 503); a request too big for any batch fails
at once instead of waiting forever; if the loop itself ever dies, every waiting request fails with the
reason and `broken` says it (/readyz turns 503).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from components.common.errors import LyraError


@dataclasses.dataclass
class BatchStats:
    batches: int = 0
    rows: int = 0
    requests: int = 0
    failed: int = 0
    busy_seconds: float = 0.0
    latencies: list = dataclasses.field(default_factory=list)     # seconds from submit to result (last 1000)


class Busy(LyraError, RuntimeError):
    """The queue is full: the client should retry later (HTTP 503 with Retry-After)."""


class Batcher:
    def __init__(self, run: Callable[[list], list], *, max_rows: int, window_s: float, max_queue: int = 256):
        self.run, self.max_rows, self.window_s = run, max_rows, window_s
        self.stats = BatchStats()
        self.broken: str | None = None
        self._queue: asyncio.Queue | None = None
        self._max_queue = max_queue
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lyra-generate")
        self._task: asyncio.Task | None = None
        self._carried: list = []

    def start(self) -> None:
        self._queue = asyncio.Queue(maxsize=self._max_queue)
        self._task = asyncio.get_running_loop().create_task(self._loop())
        self._task.add_done_callback(self._stopped)

    def _stopped(self, task: asyncio.Task) -> None:
        """The loop ended: on shutdown (cancelled) nothing to do; otherwise fail everyone who waits."""
        if task.cancelled():
            return
        exc = task.exception()
        self.broken = f"the batching loop stopped: {type(exc).__name__}: {exc}" if exc else "the batching loop stopped"
        waiting = list(self._carried)
        while self._queue is not None and not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        for _, future in waiting:
            if not future.done():
                future.set_exception(RuntimeError(self.broken))

    async def run_alone(self, fn, *args):
        """Run other model work (a reference's encoding) on the generation thread, between batches."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._worker.shutdown(wait=True)

    @property
    def waiting(self) -> int:
        return 0 if self._queue is None else self._queue.qsize()

    async def submit(self, request):
        if self.broken:
            raise RuntimeError(self.broken)
        if request.best_of > self.max_rows:
            raise ValueError(f"best_of: {request.best_of} rows exceed one batch ({self.max_rows})")
        future = asyncio.get_running_loop().create_future()
        start = time.perf_counter()
        try:
            self._queue.put_nowait((request, future))
        except asyncio.QueueFull:
            raise Busy(f"{self._max_queue} requests are waiting; retry in a few seconds") from None
        try:
            return await future
        finally:
            self.stats.latencies = (self.stats.latencies + [time.perf_counter() - start])[-1000:]

    async def _collect(self, carried: list) -> list:
        """The next batch's (request, future) pairs: what was carried over, then whatever arrives within the
        window, until `max_rows` rows."""
        pending = list(carried) or [await self._queue.get()]
        deadline = time.perf_counter() + self.window_s
        while sum(r.best_of for r, _ in pending) < self.max_rows:
            timeout = deadline - time.perf_counter()
            try:
                pending.append(self._queue.get_nowait() if timeout <= 0 else
                               await asyncio.wait_for(self._queue.get(), timeout))
            except (asyncio.QueueEmpty, asyncio.TimeoutError):
                break
        return pending

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            pending = await self._collect(self._carried)
            # the first request's group goes now (first come, first served); the rest wait for the next pass
            key = pending[0][0].group()
            batch, self._carried, rows = [], [], 0
            for item in pending:
                if item[0].group() == key and rows + item[0].best_of <= self.max_rows:
                    batch.append(item)
                    rows += item[0].best_of
                else:
                    self._carried.append(item)
            batch = [(r, f) for r, f in batch if not f.cancelled()]     # a client that hung up
            if not batch:
                continue
            start = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._worker, self.run, [r for r, _ in batch])
            except Exception as exc:      # noqa: BLE001 - every waiting request hears about it
                self.stats.failed += len(batch)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            finally:
                self.stats.busy_seconds += time.perf_counter() - start
            if len(results) != len(batch):
                self.stats.failed += len(batch)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(RuntimeError(f"{len(results)} results for {len(batch)} requests"))
                continue
            self.stats.batches += 1
            self.stats.rows += rows
            self.stats.requests += len(batch)
            for (_, future), result in zip(batch, results):
                if not future.done():
                    future.set_result(result)
