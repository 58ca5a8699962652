"""A disk that fills mid-write: a one-line error naming the path and the room left, the previous output
intact, nothing half-written, and the rerun after space is freed completes. The test mounts a small tmpfs
(it needs root, as CI runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.reliability.conftest import fill

LYRA = str(Path(sys.executable).parent / "lyra")


def audio_folder(folder: Path, n: int, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        sf.write(folder / f"piece{i}.flac", 0.2 * rng.standard_normal((20 * 44100, 2)).astype(np.float32), 44100)
    return folder


def curate(inputs: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LYRA, "curate", "--input", str(inputs), "--out", str(out)], capture_output=True, text=True)


def test_a_full_disk_is_one_line_naming_the_path_and_the_previous_output_survives(small_disk, tmp_path):
    out = small_disk / "curated"
    first = curate(audio_folder(tmp_path / "few", 1, seed=0), out)
    assert first.returncode == 0, first.stderr[-2000:]
    before = sorted(p.relative_to(out) for p in out.rglob("*"))

    ballast = fill(small_disk, leave_bytes=600_000)               # leave ~0.6 MB: the next output needs more
    full = curate(audio_folder(tmp_path / "many", 4, seed=1), out)
    assert full.returncode == 2, full.stderr[-2000:]
    message = full.stderr.strip().splitlines()[-1]
    assert "No space left on device while writing" in message and str(small_disk) in message
    assert "MB free on that file system" in message and "Traceback" not in full.stderr
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before           # the previous output, untouched
    assert [p.name for p in small_disk.iterdir() if p.name.startswith(".curated.") and p.is_dir()] == []   # no staging

    ballast.unlink()                                                             # space freed: the rerun completes
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    again = curate(tmp_path / "many", out)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(list((out / "clips").glob("*.wav"))) > sum(1 for p in before if p.suffix == ".wav")
