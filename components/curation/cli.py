"""`lyra curate --input DIR|TABLE --out DIR [--metrics PATH]`: curate a folder (or a catalogue table) of audio into clips."""

from __future__ import annotations

import argparse
from pathlib import Path

from components.config import add_config_arguments, config_from_args
from components.curation.config import CurationConfig

SECTION = "curation"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Decode, downmix, resample, loudness-normalise, trim, segment and de-duplicate every audio file below "
        "--input. Each file ends up in manifest.parquet or quarantine.parquet (with a reason). Sidecars "
        "<stem>.json next to an audio file are read as its metadata; other non-audio files are quarantined."
    )
    parser.add_argument("--input", required=True,
                        help="folder of audio files (searched recursively); a metadata table (CSV / Parquet with a "
                             "`path` column and any of title, artist, album, genre, instrument, mood, bpm, key, "
                             "licence, split) listing the files to curate; or an S3 prefix (s3://bucket/prefix, "
                             "mirrored beside --out; credentials and AWS_ENDPOINT_URL from the environment)")
    parser.add_argument("--out", required=True, type=Path,
                        help="output folder: clips/, manifest.parquet, quarantine.parquet (replaced atomically)")
    parser.add_argument("--metrics", type=Path, default=None, help="write the stage metrics (JSON) here")
    parser.add_argument("--afresh", action="store_true",
                        help="decode every file again instead of taking unchanged files from the previous --out")
    parser.add_argument("--previous", type=Path, default=None,
                        help="an earlier output to take unchanged files from (default: --out itself)")
    parser.add_argument("--parts", type=Path, default=None,
                        help="a folder of partition outputs (data/parts/curated_clips): unchanged files are taken "
                             "from them too (what `--partition` runs wrote)")
    parser.add_argument("--partition", default=None, metavar="KEY",
                        help="curate only this partition of the corpus listing (components/partitions.py) into "
                             "--out, leaving near-duplicates and held-out groups to the whole stage")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="the corpus whose listing --partition cuts (default: the folder above --input)")
    add_config_arguments(parser)
    parser.set_defaults(func=main)


def main(args) -> int:
    from components.common.reporting import stage_run
    from components.curation.curate import (
        check_folders,
        curate_folder,
        curation_metrics,
        plot_summary,
    )
    from components.curation.expectations import validate_manifest, validate_quarantine

    from components.curation.remote import is_remote, mirror, mirror_folder

    config = config_from_args(SECTION, CurationConfig, args)
    remote = is_remote(args.input)
    source = Path(args.input) if not remote else None
    if source is not None:
        check_folders(source, args.out)
    only = None
    if args.partition is not None:
        from components import partitions

        corpus = args.corpus or Path(args.input).resolve().parent
        only = frozenset(partitions.find(corpus, args.partition, partitions.load_config(args.profile, args.params)).files)
    with stage_run("curated_clips") as run:
        if remote:                       # mirrored beside the output: only new and changed objects move
            source = mirror(args.input, mirror_folder(args.out), log=run.log).audio
            check_folders(source, args.out)
        run.log.info("curating %s with %d worker(s): %g s clips at %d Hz, %g LUFS", args.input, config.workers,
                     config.clip_s, config.sample_rate, config.loudness_target_lufs)
        from components.partitions import part_folders

        with run.output(args.out, inputs={"audio": source}, params=config,
                        lineage={"partition": args.partition} if only is not None else None) as staged:
            result = curate_folder(source, staged.dir, config, progress=run.progress, log=run.log,
                                   previous=None if args.afresh else (args.previous or args.out),
                                   parts=[] if args.afresh else part_folders(args.parts), only=only)
            metrics = curation_metrics(result, config)
            if only is None:
                plot_summary(result, config, staged.image("curation_summary", "curation_summary.png"))
        if only is not None:          # a partition's share of the work: the whole stage checks the catalogue
            run.log.info("partition %s: %d files, %d curated afresh, %d taken unchanged; %d clips", args.partition,
                         metrics["files_in"], metrics["files_processed"], metrics["files_reused"], metrics["clips"])
            run.finish({**metrics, "partition": args.partition}, args.metrics)
            return 0

        # Data checks: recorded, reported to Dagster, never fatal here (the orchestrator's blocking
        # asset checks decide whether downstream stages may use this version).
        for check_name, report in (("manifest_expectations", validate_manifest(result.manifest, config)),
                                   ("quarantine_expectations", validate_quarantine(result.quarantine))):
            metrics[f"ge_{report.suite}_success"] = report.success
            metrics[f"ge_{report.suite}_failures"] = report.failures
            run.report_check(check_name, report.success, metadata=report.to_metadata())
            for failure in report.failures:
                run.log.warning("%s: %s(%s) failed: %s unexpected, e.g. %s %s", check_name, failure["expectation"],
                                failure["column"], failure["unexpected_count"], failure["unexpected_values"],
                                failure["detail"] or "")

        run.log.info("%d files in: %d curated into %d clips (%.1f min), %d quarantine rows %s; %.0fx realtime",
                     metrics["files_in"], metrics["files_curated"], metrics["clips"], metrics["clip_seconds"] / 60,
                     metrics["quarantine_rows"], metrics["quarantined_by_reason"], metrics["x_realtime"])
        run.add_path("manifest", args.out / "manifest.parquet")
        run.add_path("quarantine", args.out / "quarantine.parquet")
        run.add_metadata(**{f"quarantined.{k}": v for k, v in metrics["quarantined_by_reason"].items()})
        run.finish(metrics, args.metrics)
    return 0
