"""Throughput of the demo-corpus build and of curation, in seconds of audio per second of wall time.

    python benchmarks/corpus_curation_throughput.py [--pieces 12] [--workers 1] [--repeats 1]

Builds a demo corpus (the tiny profile's 12 pieces x 2 instruments unless told otherwise) into a
temporary folder, then curates it, timing each with `workers` processes. Both figures are given
as x-realtime and x-realtime per worker process (= per core when each worker has one core).
The curation timing covers discovery, decoding, normalising, fingerprinting, clip writing,
de-duplication and the parquet tables; the Great Expectations suites are timed separately.
There is no named peer for this stage, so no ratio: the last line is the per-core curation figure.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.corpus.build import build_corpus  # noqa: E402
from components.corpus.config import CorpusConfig  # noqa: E402
from components.curation.config import CurationConfig  # noqa: E402
from components.curation.curate import curate_folder, curation_metrics  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pieces", type=int, default=CorpusConfig().n_pieces, help="pieces in the corpus")
    parser.add_argument("--workers", type=int, default=1, help="worker processes for both stages")
    parser.add_argument("--repeats", type=int, default=1, help="curate this many times, report the best run")
    args = parser.parse_args()

    print(f"cpus visible: {os.cpu_count()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"workers: {args.workers}")
    with tempfile.TemporaryDirectory(prefix="lyra-bench-") as tmp:
        corpus_dir = Path(tmp) / "corpus"
        build = build_corpus(CorpusConfig(n_pieces=args.pieces, workers=args.workers), corpus_dir)
        audio_s = sum(t["duration_s"] for t in build.tracks)
        corpus_x = audio_s / build.build_seconds
        print(f"corpus build : {len(build.tracks)} tracks, {audio_s / 60:.1f} min of audio in "
              f"{build.build_seconds:.2f} s -> {corpus_x:.1f}x realtime, {corpus_x / args.workers:.1f}x per core "
              f"({args.workers} worker(s))")

        config = CurationConfig(workers=args.workers)
        best = None
        for i in range(args.repeats):
            result = curate_folder(corpus_dir / "audio", Path(tmp) / f"curated{i}", config)
            metrics = curation_metrics(result, config)
            if best is None or metrics["wall_seconds"] < best[1]["wall_seconds"]:
                best = (result, metrics)
        result, metrics = best
        curation_x = result.source_seconds / result.wall_seconds
        print(f"curation     : {metrics['files_in']} files, {result.source_seconds / 60:.1f} min of audio in "
              f"{result.wall_seconds:.2f} s -> {curation_x:.1f}x realtime, {curation_x / args.workers:.1f}x per core "
              f"({args.workers} worker(s)); {metrics['clips']} clips, {metrics['quarantine_rows']} quarantined")

        from components.curation.expectations import validate_manifest, validate_quarantine

        start = time.perf_counter()
        ok = validate_manifest(result.manifest, config).success and validate_quarantine(result.quarantine).success
        print(f"expectations : {'pass' if ok else 'FAIL'} in {time.perf_counter() - start:.2f} s (incl. GE import)")
    print(f"corpus_build_x_realtime_per_core: {corpus_x / args.workers:.1f}")
    print(f"curation_throughput_x_realtime_per_core: {curation_x / args.workers:.1f}")


if __name__ == "__main__":
    main()
