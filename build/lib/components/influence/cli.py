"""`lyra influence train`: the Influence stage (reference-conditioned fine-tune + held-out evaluation)."""

from __future__ import annotations

import argparse

from components.config import add_config_arguments


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    train = sub.add_parser("train", help="fine-tune Lyra with a reference conditioner (LoRA), evaluate on held-out pieces")
    train.add_argument("--model", required=True, help="Lyra folder to start from: the post-trained one (lyra_rlaif) once its gate accepts it, "
                            "else the pretrained one")
    train.add_argument("--fallback-model", default="data/models/lyra",
                       help="the pretrained Lyra, used where --model holds no model")
    train.add_argument("--codec", required=True, help="OmniCodec folder (its codes are the reference features)")
    train.add_argument("--tokens", required=True, help="token-shard folder (recordings by split)")
    train.add_argument("--curated", required=True, help="curated folder (manifest: tempo and key metadata)")
    train.add_argument("--judge", default=None, help="conditioning judge folder (the instrument attribute)")
    train.add_argument("--out", required=True, help="Influence model folder to write")
    train.add_argument("--metrics", default=None, help="JSON file for the stage's metrics")
    add_config_arguments(train)
    train.set_defaults(func=_train)


def _train(args) -> int:
    from components.influence.stage import main

    return main(args)
