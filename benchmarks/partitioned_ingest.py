"""The fan-out measured with its real commands: curation, captioning and token encoding as partitions
(`--partition KEY`, one process each, `--at-once` of them at a time, as the lifecycle's fan-out runs them) and
then the whole stage taking their work (`--parts`), against the whole stage alone with as many worker
processes (the peer on one machine: the same cores, the same work). Outputs are compared (they must be
equal), and each partition's wall time is fitted as overhead + clips x per-clip cost: the per-partition
overhead a cluster's partition size is chosen against.

    python benchmarks/partitioned_ingest.py [--corpus data/corpus/audio] [--recordings 80] [--partitions 4]
        [--at-once 2] [--codec data/models/omnicodec] [--stages curation captioning tokens]

The library is the first recordings of the demo corpus (`make demo` first); tokens use the demo's OmniCodec, or a
small untrained one where there is none. The last line is the smallest whole / fan-out time ratio of the
stages run (below 1: the fan-out is slower on this machine).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.incremental_ingest import copy_recordings, same_tokens, untrained_codec  # noqa: E402
from benchmarks.ingest_scaling import STAGES, timed  # noqa: E402  (one thread per process, the metrics read back)
from components.partitions import partitions, read_listing  # noqa: E402


def commands(stage: str, root: Path, codec: Path, common: list[str]) -> tuple[callable, callable]:
    """(whole(out_root, extra) -> argv, part(key) -> argv) of a stage; `root` holds the partitioned side's data."""
    if stage == "curation":
        return (lambda out, extra: ["curate", "--input", str(root / "corpus" / "audio"), "--out", str(out / "curated"),
                                    "--afresh" if not extra else "--parts", *extra, *common],
                lambda key: ["curate", "--input", str(root / "corpus" / "audio"), "--partition", key,
                             "--out", str(root / "parts" / "curation" / key), *common])
    if stage == "captioning":
        return (lambda out, extra: ["caption", "--curated", str(out / "curated"), "--out", str(out / "captions"),
                                    *(["--parts", *extra] if extra else []), *common],
                lambda key: ["caption", "--curated", str(root / "fan" / "curated"), "--corpus", str(root / "corpus"),
                             "--partition", key, "--out", str(root / "parts" / "captioning" / key), *common])
    tokens = ["tokens", "build", "--codec", str(codec)]
    # the peer encodes everything afresh; the merge takes the partitions' codes (clip reuse must stay on for it)
    return (lambda out, extra: [*tokens, "--curated", str(out / "curated"), "--captions", str(out / "captions"),
                                "--out", str(out / "tokens"),
                                *(["--parts", *extra] if extra else ["--set", "reuse_unchanged_shards=false"]), *common],
            lambda key: [*tokens, "--curated", str(root / "fan" / "curated"), "--captions", str(root / "fan" / "captions"),
                         "--corpus", str(root / "corpus"), "--partition", key,
                         "--out", str(root / "parts" / "tokens" / key), *common])


def equal(stage: str, a: Path, b: Path) -> bool:
    if stage == "curation":
        return (a / "curated" / "manifest.parquet").read_bytes() == (b / "curated" / "manifest.parquet").read_bytes()
    if stage == "captioning":
        return ((a / "captions" / "captions.parquet").read_bytes() == (b / "captions" / "captions.parquet").read_bytes()
                and np.array_equal(np.load(a / "captions" / "embeddings.npy"), np.load(b / "captions" / "embeddings.npy")))
    return same_tokens(a / "tokens", b / "tokens")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("data/corpus/audio"))
    parser.add_argument("--recordings", type=int, default=80)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--at-once", type=int, default=2, help="partitions run at once; the peer's worker processes")
    parser.add_argument("--codec", type=Path, default=Path("data/models/omnicodec"))
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    args = parser.parse_args()
    audio = sorted(p.name for p in args.corpus.iterdir() if p.suffix in (".wav", ".flac", ".ogg", ".mp3"))
    if len(audio) < args.recordings:
        print(f"{args.corpus} has {len(audio)} recordings; run `make demo` (or lyra corpus demo) first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        codec = args.codec if (args.codec / "config.json").is_file() else untrained_codec(root / "codec")
        copy_recordings(args.corpus, audio[:args.recordings], root / "corpus" / "audio")
        params = yaml.safe_load(Path("params.yaml").read_text())
        params["tiny"]["partitions"] = {"count": args.partitions, "concurrency": args.at_once}
        (root / "params.yaml").write_text(yaml.safe_dump(params))
        keys = [p.key for p in partitions(read_listing(root / "corpus"), args.partitions)]
        common = ["--params", str(root / "params.yaml"), "--profile", "tiny"]
        rows, ratios = [], []
        last = max(STAGES.index(s) for s in args.stages)
        for stage in STAGES[:last + 1]:     # each stage reads the one before: earlier ones run, shown when asked for
            whole, part = commands(stage, root, codec, common)
            t_whole, _ = timed(*whole(root / "alone", []), "--set", f"workers={args.at_once}")

            def one(key: str) -> tuple[str, float, int]:
                wall, figures = timed(*part(key), "--set", "workers=1")
                return key, wall, int(figures.get("clips", figures.get("n_clips", 0)))

            start = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(args.at_once) as pool:
                done = list(pool.map(one, keys))
            t_parts = time.perf_counter() - start
            t_merge, _ = timed(*whole(root / "fan", [str(root / "parts" / stage)]), "--set", f"workers={args.at_once}")
            walls, clips = np.array([w for _, w, _ in done]), np.array([c for _, _, c in done], dtype=float)
            slope, overhead = np.polyfit(clips, walls, 1) if np.ptp(clips) > 0 else (0.0, float(walls.mean()))
            same = equal(stage, root / "alone", root / "fan")
            if stage in args.stages:
                ratios.append(t_whole / (t_parts + t_merge))
                rows.append((stage, t_whole, t_parts, t_merge, ratios[-1], overhead, slope, same))
    print(f"library: {args.recordings} demo recordings in {len(keys)} partitions, {args.at_once} at once (one thread "
          f"per process); the peer: the whole stage with {args.at_once} worker processes; one run")
    print(f"{'stage':11s} {'whole s':>8s} {'parts s':>8s} {'merge s':>8s} {'whole/fan':>10s} {'overhead s':>11s} "
          f"{'s/clip':>7s} {'outputs':>8s}")
    for stage, t_whole, t_parts, t_merge, ratio, overhead, slope, same in rows:
        print(f"{stage:11s} {t_whole:8.1f} {t_parts:8.1f} {t_merge:8.1f} {ratio:10.2f} {overhead:11.1f} {slope:7.2f} "
              f"{'equal' if same else 'DIFFER':>8s}")
    if not all(r[-1] for r in rows):
        print("the fanned-out outputs differ from the whole stage's", file=sys.stderr)
        return 1
    print(f"partitioned_ingest_whole_over_fanout_min: {min(ratios):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
