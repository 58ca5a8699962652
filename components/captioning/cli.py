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
    add_config_arguments(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from components.captioning.config import CaptionConfig
    from components.captioning.stage import run_captioning
    from components.common.reporting import stage_run

    config = config_from_args(SECTION, CaptionConfig, args)
    with stage_run(SECTION) as run:
        metrics = run_captioning(args.curated, args.out, config, run)
        run.finish(metrics, args.metrics)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m components.captioning.cli")
    configure(parser)
    sys.exit(main(parser.parse_args()))
