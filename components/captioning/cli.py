"""`lyra caption --curated DIR --out DIR [--metrics PATH]`: tag, caption and embed curated clips."""

from __future__ import annotations

import argparse
import sys

from components.config import add_config_arguments, config_from_args

SECTION = "captions"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--curated", required=True, help="curated folder: manifest.parquet + clips/*.wav")
    parser.add_argument("--out", required=True, help="output folder (replaced atomically): captions.parquet, "
                                                     "embeddings.npy, agreement.json, lineage.json")
    parser.add_argument("--metrics", default=None, help="write the stage metrics (JSON) here")
    parser.add_argument("--parts", default=None,
                        help="a folder of partition outputs (data/parts/captions): unchanged clips' analysis is taken "
                             "from them too")
    parser.add_argument("--partition", default=None, metavar="KEY",
                        help="analyse only the clips of this partition of the corpus listing into --out "
                             "(components/partitions.py); the whole stage captions and embeds")
    parser.add_argument("--corpus", default="data/corpus", help="the corpus whose listing --partition cuts")
    parser.add_argument("--previous", default=None,
                        help="with --partition: an earlier whole output to take unchanged clips' analysis from")
    add_config_arguments(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from components.captioning.config import CaptionConfig
    from components.captioning.stage import run_captioning
    from components.common.reporting import stage_run

    from pathlib import Path

    from components.partitions import find, load_config, part_folders

    config = config_from_args(SECTION, CaptionConfig, args)
    with stage_run(SECTION) as run:
        if args.partition is not None:
            from components.captioning.stage import analyse_partition

            partition = find(Path(args.corpus), args.partition, load_config(args.profile, args.params))
            metrics = analyse_partition(args.curated, args.out, frozenset(partition.files), config, run,
                                        previous=Path(args.previous) if args.previous else None,
                                        partition=args.partition)
        else:
            metrics = run_captioning(args.curated, args.out, config, run,
                                     parts=part_folders(Path(args.parts) if args.parts else None))
        run.finish(metrics, args.metrics)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m components.captioning.cli")
    configure(parser)
    sys.exit(main(parser.parse_args()))
