"""`lyra corpus build --out DIR`: the corpus the lifecycle trains on, from `corpus.source` (the demo corpus or a
team's library); `lyra corpus demo --out DIR [--hours H]`: the offline demo corpus whatever the source says."""

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

    build = sub.add_parser(
        "build", help="the lifecycle's corpus from corpus.source: the demo corpus, or a folder, glob, metadata "
                      "table or s3:// prefix of your own music",
        description="Writes DIR/audio/ and DIR/listing.json (each file's size and md5). `--set source=PATH` (or "
                    "params.yaml `corpus.source`, or `lyra demo --corpus PATH`) picks the source; `demo` renders "
                    "the demo corpus as `lyra corpus demo` does. Library files are hard-linked where possible.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    build.add_argument("--out", required=True, type=Path, help="output folder (replaced atomically)")
    build.add_argument("--metrics", type=Path, default=None, help="write the stage metrics (JSON) here")
    add_config_arguments(build)
    build.set_defaults(func=build_main)


def main(args) -> int:
    if args.hours is not None:
        if args.hours <= 0:
            print("lyra corpus demo: --hours must be positive", file=sys.stderr)
            return 2
        args.overrides = [*args.overrides, f"hours={args.hours}"]
    config = config_from_args(SECTION, CorpusConfig, args)
    return _build_demo(config, args)


def build_main(args) -> int:
    from components.corpus.sources import parse

    config = config_from_args(SECTION, CorpusConfig, args)
    source = parse(config.source)
    if source.kind == "demo":
        return _build_demo(config, args)
    return _bring_in_library(config, source, args)


def _bring_in_library(config: CorpusConfig, source, args) -> int:
    from components.common.atomic import atomic_write_json
    from components.common.reporting import stage_run
    from components.corpus.sources import LISTING, ingest, ingest_metrics
    from components.curation.remote import mirror_folder

    with stage_run("corpus") as run:
        run.log.info("bringing in the %s source %s", source.kind, source.spec)
        with run.output(args.out, inputs={}, params=config, lineage={"source": source.spec}) as staged:
            result = ingest(source, staged.dir / "audio", mirror_dir=mirror_folder(args.out), progress=run.progress,
                            log=run.log)
            atomic_write_json(staged.dir / LISTING, {"source": source.spec, "kind": source.kind,
                                                     "files": result.listing})
            metrics = ingest_metrics(result)
        run.log.info("%d files (%.1f MB) from %s: %d hard-linked, %d copied, %d downloaded", metrics["files"],
                     metrics["bytes"] / 1e6, source.spec, result.linked, result.copied, result.downloaded)
        run.add_path("listing", args.out / LISTING)
        run.finish(metrics, args.metrics)
    return 0


def _build_demo(config: CorpusConfig, args) -> int:
    from components.common.reporting import stage_run
    from components.corpus.build import build_corpus, corpus_metrics, plot_durations
    from components.corpus.render import soundfont_path

    with stage_run("corpus") as run:
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
