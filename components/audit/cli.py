"""`lyra evaluate`: the independent evaluator (musicnn, trained elsewhere) on the platform's models."""

from __future__ import annotations

import argparse

from components.config import add_config_arguments


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    audit = sub.add_parser("oraql-audit", help="ORAQL against the independent evaluator: per-system agreement and "
                                               "real-vs-generated detection")
    audit.add_argument("--lyra", required=True, help="pretrained Lyra folder")
    audit.add_argument("--rlaif", required=True, help="post-trained Lyra folder (left out of the systems if empty)")
    audit.add_argument("--oraql", required=True, help="ORAQL model folder")
    audit.add_argument("--codec", required=True, help="OmniCodec folder")
    audit.add_argument("--tokens", required=True, help="token-shard folder (test captions are the prompts)")
    audit.add_argument("--curated", required=True, help="curated clips folder (the real clips, raw)")
    audit.add_argument("--out", required=True, help="folder for audit.json and the plot")
    audit.add_argument("--metrics", default=None, help="JSON file for the stage's metrics")
    add_config_arguments(audit)
    audit.set_defaults(func=_audit)


def _audit(args) -> int:
    from components.audit.oraql_audit import main

    return main(args)
