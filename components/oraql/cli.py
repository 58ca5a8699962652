"""`lyra oraql train | best-of-n` (and `lyra score`, in score.py).

    lyra oraql train --curated data/curated --codec data/models/omnicodec --lyra data/models/lyra \\
                     --tokens data/tokens --out data/models/oraql [--set ratings=ratings.csv]
    lyra oraql best-of-n --lyra data/models/lyra --codec data/models/omnicodec --tokens data/tokens \\
                     --oraql data/models/oraql --out data/eval/lyra_best_of_n [--judge MODULE:FACTORY --judge-model DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.config import add_config_arguments, config_from_args


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="<action>")
    train = sub.add_parser("train", help="build the quality ladder (+ generations, + human ratings), train and evaluate ORAQL")
    train.add_argument("--curated", required=True, type=Path, help="curated folder (manifest.parquet + clips/)")
    train.add_argument("--codec", type=Path, default=None, help="OmniCodec folder: codec rungs and decoding generations")
    train.add_argument("--lyra", type=Path, default=None, help="Lyra model folder: generations from its checkpoints")
    train.add_argument("--tokens", type=Path, default=None, help="token shards (the captions Lyra is prompted with)")
    train.add_argument("--out", required=True, type=Path, help="model folder (with evaluation.json), replaced atomically")
    train.add_argument("--metrics", type=Path, default=None, help="write the metrics JSON here")
    add_config_arguments(train)
    train.set_defaults(func=_train)

    bon = sub.add_parser("best-of-n", help="best-of-n generation on held-out prompts: the curve over n, scored by ORAQL")
    bon.add_argument("--lyra", required=True, type=Path, help="Lyra model folder")
    bon.add_argument("--codec", required=True, type=Path, help="OmniCodec folder")
    bon.add_argument("--tokens", required=True, type=Path, help="token shards (test-split captions are the prompts)")
    bon.add_argument("--oraql", required=True, type=Path, help="ORAQL model folder")
    bon.add_argument("--out", required=True, type=Path, help="output folder, replaced atomically")
    bon.add_argument("--judge", default=None, metavar="MODULE:FACTORY",
                     help="an independent evaluator of the selections: FACTORY(judge_model) returns a callable "
                          "(audios, sample_rate, prompts) -> scores (see components/oraql/best_of_n.py)")
    bon.add_argument("--judge-model", default=None, help="model folder handed to the judge's factory")
    bon.add_argument("--metrics", type=Path, default=None, help="write the metrics JSON here")
    add_config_arguments(bon)
    bon.set_defaults(func=_best_of_n)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _train(args) -> int:
    from components.oraql.config import OraqlConfig
    from components.oraql.train import run_train_stage

    cfg = config_from_args("oraql", OraqlConfig, args)
    run_train_stage(cfg, args.curated, args.out, codec=args.codec, lyra=args.lyra, tokens=args.tokens,
                    metrics_path=args.metrics)
    return 0


def _best_of_n(args) -> int:
    from components.oraql.best_of_n import load_evaluator, run_best_of_n_stage
    from components.oraql.config import BestOfNConfig

    cfg = config_from_args("best_of_n", BestOfNConfig, args)
    try:
        judge = load_evaluator(args.judge, args.judge_model) if args.judge else None
        run_best_of_n_stage(cfg, args.lyra, args.codec, args.tokens, args.oraql, args.out, args.metrics, judge=judge)
    except (FileNotFoundError, ValueError, ImportError) as exc:
        print(f"lyra oraql best-of-n: {exc}", file=sys.stderr)
        return 2
    return 0
