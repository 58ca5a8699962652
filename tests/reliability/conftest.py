"""Faults the reliability tests inject into the storage under a stage:

    small_disk        a 4 MB tmpfs the test mounts (root is needed, as CI runs); remount it bigger to free space
    failing_device    an LD_PRELOAD library (tests/reliability/eio.c, compiled once per session with the system C
                      compiler) whose environment makes every write under a prefix fail with EIO after N bytes
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("this test mounts a tmpfs: run it as root (CI does)")
    mount = tmp_path / "disk"
    mount_small_disk(mount, "4m")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def mount_small_disk(folder: Path, size: str) -> None:
    """A tmpfs of `size` over `folder` (its content copied in), unmounted by the caller's cleanup."""
    keep = folder.with_name(folder.name + ".before-mount")
    if folder.exists():
        folder.rename(keep)
    folder.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    if keep.exists():
        shutil.copytree(keep, folder, dirs_exist_ok=True)
        shutil.rmtree(keep)


def fill(disk: Path, leave_bytes: int) -> Path:
    """Ballast that leaves about `leave_bytes` free on the file system of `disk`."""
    ballast = disk / "ballast"
    ballast.write_bytes(b"\0" * max(0, shutil.disk_usage(disk).free - leave_bytes))
    return ballast


@pytest.fixture(scope="session")
def failing_device(tmp_path_factory):
    """env(prefix, after_bytes) -> the environment of a child process whose writes under `prefix` fail with EIO
    once `after_bytes` have been written there."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    assert compiler, "the I/O-error tests build a small LD_PRELOAD library: install a C compiler (gcc)"
    library = tmp_path_factory.mktemp("eio") / "eio.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-o", str(library), str(HERE / "eio.c"), "-ldl"], check=True)

    def env(prefix: Path, after_bytes: int) -> dict:
        return {**os.environ, "LD_PRELOAD": str(library), "LYRA_EIO_PREFIX": str(prefix),
                "LYRA_EIO_AFTER_BYTES": str(after_bytes)}

    return env
