"""`lyra rlaif train`: the RLAIF post-training stage."""

from __future__ import annotations

import argparse

from components.config import add_config_arguments


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    train = sub.add_parser("train", help="post-train Lyra with GRPO (TRL) against a reward model, evaluate held out")
    train.add_argument("--model", required=True, help="pretrained Lyra model folder")
    train.add_argument("--codec", required=True, help="OmniCodec folder (decodes rollouts for the reward)")
    train.add_argument("--tokens", required=True, help="token-shard folder (training and held-out captions)")
    train.add_argument("--judge", default=None,
                       help="conditioning-judge folder: held-out evaluation checks the prompt's instrument is still heard")
    train.add_argument("--out", required=True, help="post-trained model folder to write")
    train.add_argument("--metrics", default=None, help="JSON file for the stage's metrics")
    add_config_arguments(train)
    train.set_defaults(func=_train)


def _train(args) -> int:
    from components.rlaif.train import main

    return main(args)
