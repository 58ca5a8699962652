"""How the three ingest stages scale with processes, and what one more invocation costs: the figures a fan-out
of a catalogue into partitions (one stage run per partition, one pod each on a cluster) is sized with.

For each of curation, captioning and token encoding, on the same library slice, in one run:
  - 1 worker process against 2 (`--set workers=N`, one thread each): x realtime per core and the scaling
    ratio t(1) / t(2) (2.0 = perfect on this 2-core machine), of the whole run and of its work alone;
  - the per-partition overhead: what a run costs besides its recordings (solved from a 1-recording run and
    the 1-worker run: process start, imports, the codec or text encoder loading, tables, checks, plots).

    python benchmarks/ingest_scaling.py [--corpus data/corpus/audio] [--recordings 80] [--codec data/models/omnicodec]
        [--stages curation captioning tokens]

The library is the first recordings of the demo corpus (`make demo` first); tokens use the demo's OmniCodec, or a
small untrained one where there is none (the counts hold, the codes mean nothing, the speed is not the real one's).
The last line is the smallest of the three work scaling ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.incremental_ingest import copy_recordings, untrained_codec  # noqa: E402

LYRA = str(Path(sys.executable).parent / "lyra")


# one thread per worker process, so that "1 process" is one core (numpy / torch would otherwise use both)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def timed(*args: str) -> tuple[float, dict]:
    with tempfile.NamedTemporaryFile(suffix=".json") as metrics:
        start = time.perf_counter()
        subprocess.run([LYRA, *args, "--metrics", metrics.name], check=True, capture_output=True, text=True, env=ENV)
        return time.perf_counter() - start, json.loads(Path(metrics.name).read_text())


STAGES = ("curation", "captioning", "tokens")


def stages(library: Path, out: Path, codec: Path, workers: int, which: list[str]) -> tuple[dict[str, float], float]:
    """Wall seconds of each stage over `library` (fresh outputs under `out`), and the seconds of audio curated.
    Each stage reads the one before it, so a later stage runs its predecessors (untimed unless asked for)."""
    setting = ("--set", f"workers={workers}")
    times = {}
    times["curation"], m_cur = timed("curate", "--input", str(library), "--out", str(out / "curated"), "--afresh", *setting)
    if "captioning" in which or "tokens" in which:
        times["captioning"], _ = timed("caption", "--curated", str(out / "curated"), "--out", str(out / "captions"),
                                       *setting)
    if "tokens" in which:
        times["tokens"], _ = timed("tokens", "build", "--codec", str(codec), "--curated", str(out / "curated"),
                                   "--captions", str(out / "captions"), "--out", str(out / "tokens"),
                                   "--set", "reuse_unchanged_shards=false", *setting)
    return {k: v for k, v in times.items() if k in which}, float(m_cur["clip_seconds"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("data/corpus/audio"))
    parser.add_argument("--recordings", type=int, default=80)
    parser.add_argument("--codec", type=Path, default=Path("data/models/omnicodec"))
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    args = parser.parse_args()
    audio = sorted(p.name for p in args.corpus.iterdir() if p.suffix in (".wav", ".flac", ".ogg", ".mp3"))
    if len(audio) < max(args.recordings, 2):
        print(f"{args.corpus} has {len(audio)} recordings; run `make demo` (or lyra corpus demo) first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        codec = args.codec if (args.codec / "config.json").is_file() else untrained_codec(tmp / "codec")
        copy_recordings(args.corpus, audio[:args.recordings], tmp / "library")
        copy_recordings(args.corpus, audio[:1], tmp / "one")
        one, _ = stages(tmp / "library", tmp / "w1", codec, 1, args.stages)
        two, seconds = stages(tmp / "library", tmp / "w2", codec, 2, args.stages)
        single, single_seconds = stages(tmp / "one", tmp / "single", codec, 1, args.stages)
        shutil.rmtree(tmp / "w1", ignore_errors=True)

    print(f"library: {args.recordings} recordings, {seconds / 60:.1f} min of clips; codec {codec.name}"
          + ("" if codec == args.codec else " (untrained)"))
    print("x rt/core = seconds of clips per wall second per core; 'work' = the wall time less the per-run overhead")
    print(f"{'stage':12s} {'t1 s':>7s} {'t2 s':>7s} {'1 proc x rt':>12s} {'2 proc x rt/core':>17s} {'t1/t2':>6s} "
          f"{'work t1/t2':>11s} {'overhead s':>11s}")
    ratios = []
    for stage in one:
        # a 1-recording run is nearly all overhead: process start, imports, models loaded, tables, checks, plots
        overhead = (single[stage] - one[stage] * single_seconds / seconds) / (1 - single_seconds / seconds)
        work = (one[stage] - overhead) / max(two[stage] - overhead, 1e-9)
        ratios.append(work)
        print(f"{stage:12s} {one[stage]:7.1f} {two[stage]:7.1f} {seconds / one[stage]:12.1f} "
              f"{seconds / two[stage] / 2:17.1f} {one[stage] / two[stage]:6.2f} {work:11.2f} {overhead:11.1f}")
    print(f"ingest_two_process_work_scaling_min: {min(ratios):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
