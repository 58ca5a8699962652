"""`lyra tokens build`: the curated corpus -> token shards (see components/tokens/build.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from components.common.reporting import stage_run
from components.config import add_config_arguments, config_from_args
from components.partitions import find, load_config, part_folders
from components.tokens.build import TokenBuildError, build_token_shards, encode_partition
from components.tokens.checks import codebook_statistics, codes_in_range, every_clip_in_exactly_one_shard, plot_codebook_histograms
from components.tokens.config import TokensConfig
from components.tokens.dataset import TokenDataset


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    build = sub.add_parser("build", help="encode curated clips with a codec into memory-mappable shards",
                           description="Encode every curated clip once with a codec version into token shards.")
    build.add_argument("--codec", required=True, type=Path, help="OmniCodec model folder")
    build.add_argument("--codec-eval", type=Path, default=None,
                       help="the codec's evaluation folder; its headline metrics are recorded with the shards")
    build.add_argument("--curated", required=True, type=Path, help="curated folder (manifest.parquet + clips/)")
    build.add_argument("--captions", required=True, type=Path, help="captions folder (captions.parquet + embeddings.npy)")
    build.add_argument("--out", required=True, type=Path, help="output folder for shards + index")
    build.add_argument("--metrics", type=Path, default=None, help="write metrics JSON here")
    build.add_argument("--parts", type=Path, default=None,
                       help="a folder of partition outputs (data/parts/token_shards): unchanged clips' codes are "
                            "taken from them too")
    build.add_argument("--partition", default=None, metavar="KEY",
                       help="encode only the clips of this partition of the corpus listing into --out (a one-shard "
                            "build the whole stage takes codes from); components/partitions.py")
    build.add_argument("--corpus", type=Path, default=Path("data/corpus"), help="the corpus whose listing --partition cuts")
    build.add_argument("--previous", type=Path, default=None,
                       help="with --partition: an earlier whole build to take unchanged clips' codes from")
    add_config_arguments(build)
    build.set_defaults(func=main)


def main(args) -> int:
    cfg = config_from_args("tokens", TokensConfig, args)
    with stage_run("token_shards") as run:
        for path in (args.codec / "config.json", args.curated / "manifest.parquet", args.captions / "captions.parquet"):
            if not path.is_file():
                raise TokenBuildError(f"missing input: {path}")
        if args.partition is not None:
            return _build_partition(args, cfg, run)
        with run.output(args.out, params=cfg,
                        inputs={"codec": args.codec, "curated": args.curated, "captions": args.captions}) as staged:
            staging = staged.dir
            metrics = build_token_shards(args.curated, args.captions, args.codec, args.out, staging, cfg,
                                         progress=run.progress, log=run.log, codec_eval=args.codec_eval,
                                         parts=part_folders(args.parts))
            ds = TokenDataset(staging, split=None)
            manifest_ids = pd.read_parquet(args.curated / "manifest.parquet", columns=["clip_id"])["clip_id"]
            accounting = every_clip_in_exactly_one_shard(manifest_ids, ds.index)
            in_range = codes_in_range(ds)
            counts = ds.unigram_counts()
            np.save(staging / "codebook_counts.npy", counts)
            plot_codebook_histograms(counts, staged.image("codebook_histograms", "codebook_histograms.png"))
            for outcome in (accounting, in_range):
                if not outcome.passed:
                    raise TokenBuildError(f"{outcome.description}: FAILED {outcome.details}")
        run.report_check("every_clip_in_exactly_one_shard", accounting.passed, metadata=accounting.metadata())
        run.report_check("codes_in_range", in_range.passed, metadata=in_range.metadata())
        splits = metrics.pop("splits")
        metrics.update({f"clips_{k}": int(v) for k, v in splits.items()})
        metrics.update(codebook_statistics(counts))
        run.finish(metrics, args.metrics)
    return 0


def _build_partition(args, cfg: TokensConfig, run) -> int:
    """`--partition KEY`: one partition's clips encoded into --out (components/tokens/build.py encode_partition)."""
    partition = find(args.corpus, args.partition, load_config(args.profile, args.params))
    with run.output(args.out, params=cfg, inputs={"codec": args.codec, "curated": args.curated},
                    lineage={"partition": args.partition}) as staged:
        metrics = encode_partition(args.curated, args.codec, staged.dir, frozenset(partition.files), cfg,
                                   previous=args.previous, partition=args.partition, log=run.log)
    run.finish(metrics, args.metrics)
    return 0
