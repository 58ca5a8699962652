"""`lyra lm train` and `lyra lm sample`: the two pipeline stages of the Lyra music LM."""

from __future__ import annotations

import argparse

from components.config import add_config_arguments


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)

    train = sub.add_parser("train", help="pretrain Lyra on token shards (DeepSpeed; `nproc` processes)",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train.add_argument("--tokens", required=True, help="token-shard folder (from `lyra tokens build`)")
    train.add_argument("--out", required=True, help="model folder to write (config.json + model.safetensors + plots)")
    train.add_argument("--metrics", default=None, help="JSON file for the stage's metrics")
    add_config_arguments(train)
    train.set_defaults(func=_train)

    sample = sub.add_parser("sample", help="generate from held-out captions, decode, measure conditioning",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sample.add_argument("--model", required=True, help="trained Lyra model folder")
    sample.add_argument("--codec", required=True, help="OmniCodec model folder to decode with")
    sample.add_argument("--tokens", required=True, help="token-shard folder (the test split's captions are the prompts)")
    sample.add_argument("--judge", required=True, help="conditioning judge folder (`lyra judge train`)")
    sample.add_argument("--curated", default=None,
                        help="curated clips folder: the real clips the independent evaluator compares the generations "
                             "with (left out: no independent evaluation)")
    sample.add_argument("--out", required=True, help="folder for the wavs, JSONs and plots")
    sample.add_argument("--metrics", default=None, help="JSON file for the stage's metrics")
    add_config_arguments(sample)
    sample.set_defaults(func=_sample)


def _train(args) -> int:
    from components.lyra.train import main

    return main(args)


def _sample(args) -> int:
    from components.config import config_from_args
    from components.lyra.config import GenerateConfig
    from components.lyra.sample import run_sample_stage

    cfg = config_from_args("generate", GenerateConfig, args)
    run_sample_stage(cfg, args.model, args.codec, args.tokens, args.judge, args.out, args.metrics, curated=args.curated)
    return 0
