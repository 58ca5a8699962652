"""Micro-batching: requests that arrive together share one forward pass.

    submit(request) --queue--> [wait up to `window` for more, up to `max_rows` rows]
        --group by Request.group()--> run(group) on the one generation thread --> each request's future

While a batch runs, new requests queue up and form the next batch, so under load batches fill without
any wait; alone, a request waits at most `window`. Generation runs on one worker thread (torch releases
the GIL, so the event loop keeps answering health checks and serving pages meanwhile).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable


@dataclasses.dataclass
class BatchStats:
    batches: int = 0
    rows: int = 0
    requests: int = 0
    failed: int = 0
    busy_seconds: float = 0.0
    latencies: list = dataclasses.field(default_factory=list)     # seconds from submit to result (last 1000)


class Batcher:
    def __init__(self, run: Callable[[list], list], *, max_rows: int, window_s: float):
        self.run, self.max_rows, self.window_s = run, max_rows, window_s
        self.stats = BatchStats()
        self._queue: asyncio.Queue | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lyra-generate")
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._worker.shutdown(wait=True)

    @property
    def waiting(self) -> int:
        return 0 if self._queue is None else self._queue.qsize()

    async def submit(self, request):
        future = asyncio.get_running_loop().create_future()
        start = time.perf_counter()
        await self._queue.put((request, future))
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
        carried: list = []
        loop = asyncio.get_running_loop()
        while True:
            pending = await self._collect(carried)
            # the first request's group goes now (first come, first served); the rest wait for the next pass
            key = pending[0][0].group()
            batch, carried, rows = [], [], 0
            for item in pending:
                if item[0].group() == key and rows + item[0].best_of <= self.max_rows:
                    batch.append(item)
                    rows += item[0].best_of
                else:
                    carried.append(item)
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
            self.stats.batches += 1
            self.stats.rows += rows
            self.stats.requests += len(batch)
            for (_, future), result in zip(batch, results):
                if not future.done():
                    future.set_result(result)
