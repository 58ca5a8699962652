"""Run a function over many items in worker processes so that no item can take another down.

An exception inside `fn` is the function's business (`process_file` turns it into a quarantine
row). What this module adds is isolation from a dying process: a decoder segfault or an OOM kill
breaks a `ProcessPoolExecutor` and fails every future still pending in it. The items without a
result are then re-run one per fresh single-worker pool, so the culprit is identified and
`on_crash(item, detail)` stands in for its result, while every other item still gets processed.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterator, Sequence, TypeVar

from components.common.atomic import STORAGE_ERRORS

T = TypeVar("T")
R = TypeVar("R")


def _context():
    # fork: workers start in ~ms and inherit the imported modules; spawn where fork does not exist
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def run_isolated(fn: Callable[[T], R], items: Sequence[T], workers: int,
                 on_crash: Callable[[T, str], R]) -> Iterator[tuple[int, R]]:
    """Yield (index, result) for every item, in completion order, exactly once each."""
    done: set[int] = set()
    with cf.ProcessPoolExecutor(max_workers=max(1, workers), mp_context=_context()) as pool:
        futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        try:
            for future in cf.as_completed(futures):
                i = futures[future]
                try:
                    result = future.result()
                except BrokenProcessPool:
                    break  # the remaining futures are lost with the pool; retried one by one below
                except OSError as exc:
                    if exc.errno in STORAGE_ERRORS:
                        raise   # a full disk or a failing device stops the run (the output is not replaced)
                    result = on_crash(items[i], f"worker result lost: {type(exc).__name__}: {exc}")
                except Exception as exc:  # e.g. a result that cannot be unpickled
                    result = on_crash(items[i], f"worker result lost: {type(exc).__name__}: {exc}")
                done.add(i)
                yield i, result
        except BrokenProcessPool:
            pass
    for i, item in enumerate(items):
        if i in done:
            continue
        with cf.ProcessPoolExecutor(max_workers=1, mp_context=_context()) as solo:
            try:
                result = solo.submit(fn, item).result()
            except BrokenProcessPool as exc:
                result = on_crash(item, f"worker process died ({exc or 'no detail'}); the file was retried alone and "
                                        "killed its worker again")
        yield i, result
