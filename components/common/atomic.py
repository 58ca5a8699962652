"""Write outputs so that a crash never leaves a half-written artifact behind.

Everything is written next to its final location under a temporary name and moved into place
with an atomic `os.replace` once complete. A reader therefore sees either the old version or
the new one, never a mixture.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


STORAGE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS)


def _named(exc: BaseException, final: Path) -> BaseException:
    """A disk-full / I/O error raised by a write deep inside a writer (no file name on it) renamed after the
    output it was writing, so the user is told which path failed."""
    if isinstance(exc, OSError) and exc.errno in STORAGE_ERRORS and not exc.filename:
        named = OSError(exc.errno, exc.strerror, os.fspath(final))
        named.__cause__ = exc
        return named
    return exc


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    with contextlib.suppress(OSError, ValueError):  # Linux: read it without touching it
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def _publish_mode(path: Path, *, directory: bool) -> None:
    """Give a staged file/folder the mode a plain open()/mkdir() would have.

    mkstemp/mkdtemp create 0600/0700 (private while half-written); once complete, an artifact
    should be as readable as any other output, e.g. by other users of a shared volume.
    """
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary file path; on success it replaces `final`, on error it is removed.

    `suffix` keeps the extension for writers that infer the format from the name
    (soundfile, pandas, torch.save are happy either way, but matplotlib is not).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{suffix or final.suffix}", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        _publish_mode(tmp_path, directory=False)
        os.replace(tmp_path, final)
        _fsync_dir(final.parent)
    except BaseException as exc:
        tmp_path.unlink(missing_ok=True)
        named = _named(exc, final)
        if named is exc:
            raise
        raise named from exc


def atomic_write_bytes(final: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)
    return Path(final)


def atomic_write_text(final: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(final, text.encode("utf-8"))


def atomic_write_json(final: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(final, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    # numpy scalars/arrays and paths show up in metrics dicts all the time
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces the folder `final` as a whole.

    The previous version is moved aside first and deleted only after the new one is in place,
    so an interruption at any point leaves either the old or the new folder at `final`
    (plus, at worst, a hidden `.old`/`.tmp` sibling that the next run cleans up).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    old = final.parent / f".{final.name}.old"
    if old.exists() and not final.exists():
        os.replace(old, final)  # a previous run died between the two renames below
    for stale in final.parent.glob(f".{final.name}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield staging
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        named = _named(exc, final)
        if named is exc:
            raise
        raise named from exc
    _publish_mode(staging, directory=True)
    shutil.rmtree(old, ignore_errors=True)
    if final.exists() or final.is_symlink():
        os.replace(final, old)
    os.replace(staging, final)
    _fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> bool:
    """Put `src`'s file at `dst` (a staging folder's new entry): a hard link where the file system allows one
    (no space; the link survives the old folder being swapped out), else a copy. True when linked."""
    try:
        os.link(src, dst)
        return True
    except OSError:
        shutil.copy2(src, dst)
        return False
