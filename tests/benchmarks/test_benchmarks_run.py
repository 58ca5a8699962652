"""Every script in benchmarks/ runs end to end on a small setting.

Benchmarks are not imported by anything else, so an API change in components/ breaks them
silently; running each one as CI would (a subprocess, from the repo root) catches that. The
numbers they print at this size mean nothing: only the exit code and the shape of the last
line (`name: value`, what dashboards and reports read) are checked.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.omnicodec.synthetic import make_curated

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
LAST_LINE = re.compile(r"^[\w .\-/()]+: \S+")
TIMEOUT_S = 300        # a hung benchmark fails its case instead of stalling the whole CI job


def codec_quality_args(tmp_path: Path) -> list[str]:
    curated = make_curated(tmp_path / "curated", n_train=2, n_valid=1, n_test=1, seconds=1.0)
    return ["--curated", str(curated), "--steps", "2", "--no-visqol", "--eval-clips", "1", "--eval-seconds", "1"]


def incremental_ingest_args(tmp_path: Path) -> list[str]:
    import soundfile as sf

    from tests.curation.conftest import synth_music

    library = tmp_path / "library"
    library.mkdir()
    for i in range(5):
        sf.write(library / f"piece{i}.wav", synth_music(3.0, 24_000, seed=i), 24_000)
    return ["--corpus", str(library), "--first", "3", "--added", "2"]


def incremental_ingest_ci_args(tmp_path: Path) -> list[str]:
    # curation only: each stage adds 2-3 processes (~7 s each); the reuse of captions and tokens is tested in
    # tests/captioning and tests/tokens/test_build.py
    return [*incremental_ingest_args(tmp_path), "--curation-only"]


# script -> its smallest flags (a list, or a function of tmp_path for scripts that need data)
CASES = {
    "best_of_n.py": ["--seconds", "1", "--rounds", "1"],
    "codec_quality.py": codec_quality_args,
    "codec_speed.py": ["--seconds", "1", "--repeats", "1", "--threads", "1", "--skip-dac"],
    "corpus_curation_throughput.py": ["--pieces", "2"],
    "incremental_ingest.py": incremental_ingest_ci_args,
    "ingest_scaling.py": lambda tmp_path: [*incremental_ingest_args(tmp_path)[:2], "--recordings", "2",
                                           "--stages", "curation"],
    "partitioned_ingest.py": lambda tmp_path: [*incremental_ingest_args(tmp_path)[:2], "--recordings", "3",
                                               "--partitions", "1", "--stages", "curation"],
    "serving.py": ["--clients", "2", "--requests", "1", "--seconds", "0.5", "--threads", "1"],
    "lm_speed.py": ["--frames", "20", "--rounds", "1", "--train-steps", "1", "--train-batch", "1",
                    "--train-frames", "32"],
}


def benchmark_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", TMPDIR=str(tmp_path))
    # the small flags are sized for the repo's params.yaml at the tiny profile (codec_quality reads it)
    env.pop("LYRA_PARAMS", None)
    env["LYRA_PROFILE"] = "tiny"
    return env


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


@pytest.mark.parametrize("script", sorted(CASES))
def test_benchmark_runs(script, tmp_path):
    flags = CASES[script]
    args = flags(tmp_path) if callable(flags) else flags
    command = [sys.executable, str(BENCHMARKS / script), *args]
    try:
        proc = subprocess.run(command, cwd=ROOT, env=benchmark_env(tmp_path), capture_output=True, text=True,
                              timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        pytest.fail(f"{script} ran past {TIMEOUT_S} s\n--- stderr (tail) ---\n{tail(stderr)}")
    if proc.returncode != 0:
        pytest.fail(f"{script} exited with {proc.returncode}: {' '.join(command)}\n"
                    f"--- stderr (tail) ---\n{tail(proc.stderr)}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    if not LAST_LINE.match(last):
        pytest.fail(f"{script}: last stdout line is not `name: value`: {last!r}\n"
                    f"--- stdout (tail) ---\n{tail(proc.stdout, 10)}\n--- stderr (tail) ---\n{tail(proc.stderr)}")


def test_every_benchmark_has_a_ci_run():
    scripts = sorted(p.name for p in BENCHMARKS.glob("*.py") if p.name != "__init__.py")
    missing = [s for s in scripts if s not in CASES]
    stale = [s for s in CASES if s not in scripts]
    assert not missing, f"benchmarks without a small CI run in {Path(__file__).name} CASES: {missing}"
    assert not stale, f"CASES lists benchmarks that no longer exist: {stale}"
