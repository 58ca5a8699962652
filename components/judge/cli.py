"""`lyra judge train --tokens data/tokens --codec data/models/omnicodec --curated data/curated --out data/models/judge`."""

from __future__ import annotations

import argparse
from pathlib import Path

from components.config import add_config_arguments, config_from_args


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="<action>")
    train = sub.add_parser("train", help="fit the conditioning judge (instrument, collection) on real decoded music "
                                         "of training pieces; choose on valid, report on test")
    train.add_argument("--tokens", required=True, type=Path, help="token-shard folder (codes of every clip)")
    train.add_argument("--codec", required=True, type=Path, help="the OmniCodec folder the shards were made with")
    train.add_argument("--curated", required=True, type=Path, help="curated folder (its manifest holds the labels)")
    train.add_argument("--out", required=True, type=Path, help="judge folder, replaced atomically")
    train.add_argument("--metrics", type=Path, default=None, help="write the stage metrics (JSON) here")
    add_config_arguments(train)
    train.set_defaults(func=_train)


def _train(args) -> int:
    from components.judge.config import JudgeConfig
    from components.judge.train import run_judge_stage

    cfg = config_from_args("judge", JudgeConfig, args)
    run_judge_stage(cfg, args.tokens, args.codec, args.curated, args.out, args.metrics)
    return 0
