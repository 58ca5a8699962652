"""`lyra corpus demo --out DIR [--hours H] [--metrics PATH]`: build the offline demo corpus."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.config import add_config_arguments, config_from_args
from components.corpus.config import CorpusConfig

SECTION = "corpus"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="<action>")
    demo = sub.add_parser(
        "demo", help="render music21 scores under several GM instruments into a captioned, split corpus",
        description="Offline, licence-noted demo corpus: audio/<track_id>.wav + .json sidecars and tracks.parquet.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    demo.add_argument("--out", required=True, type=Path, help="output folder (replaced atomically)")
    demo.add_argument("--hours", type=float, default=None,
                      help="build this many hours of audio instead of the config's n_pieces (same as --set hours=H)")
    demo.add_argument("--metrics", type=Path, default=None, help="write the stage metrics (JSON) here")
    add_config_arguments(demo)
    demo.set_defaults(func=main)


def main(args) -> int:
    from components.common.reporting import stage_run
    from components.corpus.build import build_corpus, corpus_metrics, plot_durations
    from components.corpus.render import soundfont_path

    if args.hours is not None:
        if args.hours <= 0:
            print("lyra corpus demo: --hours must be positive", file=sys.stderr)
            return 2
        args.overrides = [*args.overrides, f"hours={args.hours}"]
    config = config_from_args(SECTION, CorpusConfig, args)
    with stage_run("demo_corpus") as run:
        size = f"{config.hours} h of audio" if config.hours else f"{config.n_pieces} pieces"
        run.log.info("building the demo corpus: %s x %d instruments, seed %d, %d worker(s)",
                     size, config.instruments_per_piece, config.seed, config.workers)
        import music21

        with run.output(args.out, inputs={"soundfont": soundfont_path()}, params=config,
                        lineage={"music21_version": music21.__version__}) as staged:
            build = build_corpus(config, staged.dir, progress=run.progress)
            metrics = corpus_metrics(build, config)
            plot_durations(build.tracks, staged.image("durations_by_collection", "durations_by_collection.png"))
        run.log.info("%d tracks from %d pieces, %.1f min of audio in %.1f s (%.0fx realtime); %d scores skipped",
                     metrics["n_tracks"], metrics["n_pieces"], metrics["audio_seconds"] / 60,
                     metrics["build_seconds"], metrics["x_realtime"], metrics["skipped_scores"])
        run.add_path("tracks", args.out / "tracks.parquet")
        run.finish(metrics, args.metrics)
    return 0
