"""`lyra scaling sweep` (the lyra_scaling stage) and `lyra scaling recommend --flops F`."""

from __future__ import annotations

import argparse
import json
import sys

from components.config import add_config_arguments

DEFAULT_FIT = "data/eval/scaling"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    sweep = sub.add_parser("sweep", help="train the sweep of small Lyra runs, fit L(N, D), check it on a held-out run")
    sweep.add_argument("--tokens", required=True, help="token-shard folder (from `lyra tokens build`)")
    sweep.add_argument("--out", required=True, help="folder for fit.json, runs.csv and scaling.png "
                       "(runs are kept beside it, in .<name>.runs/, and reused)")
    sweep.add_argument("--metrics", default=None, help="JSON file for the stage's metrics")
    add_config_arguments(sweep)
    sweep.set_defaults(func=_sweep)

    rec = sub.add_parser("recommend", help="the compute-optimal model size and tokens for a FLOP budget, from a fitted sweep")
    rec.add_argument("--flops", type=float, required=True, help="compute budget C = 6 N D in FLOPs, e.g. 1e18")
    rec.add_argument("--fit", default=DEFAULT_FIT, help="the sweep's output folder (holds fit.json)")
    rec.add_argument("--codebooks", type=int, default=None,
                     help="use the law refitted on a codec with this many codebooks (default: the sweep's own codec)")
    rec.add_argument("--json", action="store_true", help="print JSON instead of text")
    rec.set_defaults(func=_recommend)


def _sweep(args) -> int:
    from components.scaling.stage import main

    return main(args)


def _recommend(args) -> int:
    from components.scaling.fit import ScalingLaw
    from components.scaling.recommend import compute_optimal
    from components.scaling.recommend import ScalingError, load_fit

    try:
        fit = load_fit(args.fit)
        K = int(fit["num_codebooks"])
        k = K if args.codebooks is None else args.codebooks
        codec = fit["codecs"].get(str(k))
        if codec is None:
            raise ScalingError(f"{args.fit}: no law for {k} codebooks; the sweep fitted {sorted(fit['codecs'])}")
        law = ScalingLaw(**codec["law"])
        rec = compute_optimal(law, args.flops)
    except (FileNotFoundError, ScalingError, ValueError, KeyError, TypeError) as exc:
        print(f"lyra scaling recommend: {exc}", file=sys.stderr)
        return 2
    out = {**rec.as_dict(), "num_codebooks": k, "bitrate_kbps": codec["bitrate_kbps"], "law": codec["law"],
           "fitted_range": {"N": [min(r["N"] for r in fit["runs"]), max(r["N"] for r in fit["runs"])],
                            "D": [min(r["D"] for r in fit["runs"]), max(r["D"] for r in fit["runs"])]}}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    lo, hi = out["fitted_range"]["N"]
    print(f"budget {args.flops:.3g} FLOPs (6ND), codec with {k} codebooks ({codec['bitrate_kbps']:.2f} kbps):")
    print(f"  model:  N = {rec.params:,.0f} non-embedding parameters")
    print(f"  data:   D = {rec.tokens:,.0f} training frames (each carries {k} codes)")
    print(f"  loss:   {rec.loss:.3f} nats/code predicted (valid)")
    law = codec["law"]
    print(f"  law:    L = {law['E']:.3f} + {law['A']:.4g}/N^{law['alpha']:.3f} + {law['B']:.4g}/D^{law['beta']:.3f}")
    if not lo <= rec.params <= hi:
        print(f"  note:   N is outside the fitted sizes ({lo:,.0f}-{hi:,.0f}): an extrapolation", file=sys.stderr)
    return 0
