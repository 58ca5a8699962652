"""One holder at a time, and a loser that is told who holds it.

    with exclusive(".dagster/lyra-demo.lock", "the lifecycle run of this checkout"):
        ...                      # a second process gets LockHeld: "... is held by pid 4242 (lyra demo) on host
                                 # h since 05:12:40 UTC; wait for it to finish or stop it"

The lock is the operating system's (filelock's flock), so it goes with its process: a killed holder
leaves no lock behind, only its description file, which the next holder overwrites. Within one process
the same path may be taken again (a resumed run in a test, a stage inside a demo).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import sys
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from components.common.errors import LyraError

_HELD: dict[str, FileLock] = {}      # path -> this process's lock on it (re-entrant)


class LockHeld(LyraError, RuntimeError):
    """Another process holds it; the message names that process."""


def _holder_file(path: Path) -> Path:
    return path.with_name(path.name + ".holder.json")


def describe_holder(path: str | os.PathLike) -> str:
    try:
        h = json.loads(_holder_file(Path(path)).read_text())
    except (OSError, ValueError):
        return "another process"
    return f"pid {h.get('pid')} ({h.get('command')}) on {h.get('host')} since {h.get('since')}"


def acquire(path: str | os.PathLike, what: str) -> FileLock:
    """Take the lock at `path` for this process (kept until it exits or `release`), or raise LockHeld."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.fspath(path.resolve())
    lock = _HELD.get(key) or FileLock(key)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise LockHeld(f"{what} is held by {describe_holder(path)}; wait for it to finish or stop it "
                       f"(lock: {path})") from None
    if key not in _HELD:
        _HELD[key] = lock
        since = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:3]]) if sys.argv and sys.argv[0] else "python"
        _holder_file(path).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since,
                                                  "command": command}) + "\n")
    return lock


def release(path: str | os.PathLike) -> None:
    lock = _HELD.get(os.fspath(Path(path).resolve()))
    if lock is not None and lock.is_locked:
        lock.release()
        if not lock.is_locked:
            _HELD.pop(os.fspath(Path(path).resolve()), None)
            Path(_holder_file(Path(path))).unlink(missing_ok=True)


@contextlib.contextmanager
def exclusive(path: str | os.PathLike, what: str) -> Iterator[None]:
    acquire(path, what)
    try:
        yield
    finally:
        release(path)
