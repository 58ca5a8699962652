"""`python -m orchestration.k8s ...`: what the k8s launcher would submit, without a cluster.

    render    --profile cluster [--out DIR]   every stage's Pod / TrainJob as YAML, validated
    deepspeed [--check]                       infra/deepspeed/<profile>.json from the typed `lm` configs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from components.config import PROFILES, load_stage_config
from components.pipeline import STAGES, stage_by_name
from orchestration.k8s.specs import workload
from orchestration.k8s.table import REPO_ROOT
from orchestration.k8s.validate import ManifestError, validate_manifest

DEEPSPEED_DIR = REPO_ROOT / "infra" / "deepspeed"


def deepspeed_configs() -> dict[str, dict]:
    """The DeepSpeed config `lyra lm train` builds for each profile (bf16 where it runs on GPUs)."""
    from components.lyra.config import LMConfig
    from components.lyra.train import deepspeed_config

    stage = stage_by_name("lyra_pretrain")
    out = {}
    for profile in PROFILES:
        cfg = load_stage_config(stage.params, LMConfig, params_path=REPO_ROOT / "params.yaml", profile=profile)
        out[profile] = deepspeed_config(cfg, bf16=profile != "tiny")   # tiny trains on CPU (bf16 by autocast, if at all)
    return out


def _render(args) -> int:
    docs, failed = [], False
    for stage in STAGES:
        doc = workload(stage, args.profile)
        try:
            validate_manifest(doc)
        except ManifestError as exc:
            print(f"{stage.name}: {exc}", file=sys.stderr)
            failed = True
        docs.append(doc)
    text = yaml.safe_dump_all(docs, sort_keys=False)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / f"stages-{args.profile}.yaml").write_text(text)
    else:
        sys.stdout.write(text)
    return 1 if failed else 0


def _deepspeed(args) -> int:
    stale = []
    for profile, cfg in deepspeed_configs().items():
        path = DEEPSPEED_DIR / f"{profile}.json"
        text = json.dumps(cfg, indent=2, sort_keys=True) + "\n"
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path.name)
        else:
            DEEPSPEED_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(REPO_ROOT)}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run `python -m orchestration.k8s deepspeed`", file=sys.stderr)
    return 1 if stale else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.k8s", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    render = sub.add_parser("render", help="every stage's Pod / TrainJob as validated YAML")
    render.add_argument("--profile", default="cluster", choices=PROFILES)
    render.add_argument("--out", default=None, help="folder for stages-<profile>.yaml (default: stdout)")
    render.set_defaults(func=_render)
    ds = sub.add_parser("deepspeed", help="write (or --check) infra/deepspeed/<profile>.json")
    ds.add_argument("--check", action="store_true")
    ds.set_defaults(func=_deepspeed)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
