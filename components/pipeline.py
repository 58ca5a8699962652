"""The stage graph: the single source of truth for both Dagster and DVC.

Each `Stage` is one lifecycle step: a `lyra` command, the data it reads, what it writes, the
code that defines it and the params section it is configured by. From this table

* `orchestration/` builds one Dagster asset per stage (upstream assets = the stages whose
  outputs this stage reads), launched through the launcher resource; and
* `lyra pipeline dvc-yaml --write` generates `dvc.yaml`, so `dvc repro` runs the same commands.

`tests/test_pipeline_graph.py` fails if the committed dvc.yaml or the Dagster asset graph
disagree with this table.

    demo_corpus -> curated_clips -> captions ----------------+
                         |                                   v
                         +-> omnicodec -> omnicodec_eval    token_shards -> lyra_pretrain -> lyra_samples
                         |        +--------------------------^                   +-> lyra_rlaif
                         |                                                            +-> lyra_influence
                         +-----------------------------------------------> oraql -> lyra_best_of_n

    token_shards -> lyra_scaling    (job `scaling`, on request: `lyra demo --job scaling`, `dvc repro lyra_scaling`)
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import sys
from pathlib import Path
from typing import Iterable

import yaml

from components.config import BASE_PROFILE, PROFILES, load_params

METRICS_DIR = "data/metrics"


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str                    # Dagster asset key and DVC stage name
    group: str                   # lifecycle group (Dagster asset group)
    description: str
    argv: tuple[str, ...]        # the `lyra` command, without the shared --metrics option
    deps: tuple[str, ...]        # data paths read (other stages' outputs or raw inputs)
    outs: tuple[str, ...]        # paths written, each a folder replaced atomically
    params: str                  # params.yaml section, looked up in every profile
    config: str = ""             # "module:Class" of the typed config that validates the params section
    pool: str = "cpu"            # Kubernetes node pool: cpu | gpu
    distributed: bool = False    # trains with torchrun/DeepSpeed (nproc from the params section)
    extra_params: tuple[str, ...] = ()   # further params sections the stage reads (DVC tracks them too)
    job: str = "lifecycle"       # the Dagster job that runs it; only `lifecycle` runs in `lyra demo` by default
    runs: tuple[str, ...] = ()   # stages whose command this one starts in subprocesses (their code is its code too)
    # Which ready stage the executor starts first (higher first), so that the longest chain is never the one
    # left waiting (on tiny: ORAQL -> RLAIF after Lyra's pretraining, 4 min of the last 5)
    priority: int = 0

    def config_class(self):
        module, _, name = self.config.partition(":")
        return getattr(importlib.import_module(module), name)

    @property
    def metrics_path(self) -> str:
        return f"{METRICS_DIR}/{self.name}.json"

    @property
    def command(self) -> list[str]:
        return ["lyra", *self.argv, "--metrics", self.metrics_path]

    @property
    def code_paths(self) -> tuple[str, ...]:
        """The source files the stage's command imports (DVC deps, Dagster code_version): see code_deps.py."""
        return stage_code_paths(self)


STAGES: tuple[Stage, ...] = (
    Stage(
        name="demo_corpus", group="corpus",
        description="Offline, licence-clean demo corpus: music21 scores rendered under several GM instruments.",
        argv=("corpus", "demo", "--out", "data/corpus"),
        deps=(), outs=("data/corpus",), params="corpus",
        config="components.corpus.config:CorpusConfig",
    ),
    Stage(
        name="curated_clips", group="curation",
        description="Decoded, mono, resampled, loudness-normalised, de-duplicated clips; rejects quarantined with a reason.",
        argv=("curate", "--input", "data/corpus/audio", "--out", "data/curated"),
        deps=("data/corpus",), outs=("data/curated",), params="curation",
        config="components.curation.config:CurationConfig",
    ),
    Stage(
        name="captions", group="captioning",
        description="Tags (tempo, key, metre, loudness, brightness, instrument) -> varied captions + sentence embeddings.",
        argv=("caption", "--curated", "data/curated", "--out", "data/captions"),
        deps=("data/curated",), outs=("data/captions",), params="captions",
        config="components.captioning.config:CaptionConfig",
    ),
    Stage(
        name="omnicodec", group="omnicodec",
        description="Train the OmniCodec neural audio codec (SEANet + factorised RVQ + GAN losses) on curated clips.",
        argv=("codec", "train", "--curated", "data/curated", "--out", "data/models/omnicodec"),
        deps=("data/curated",), outs=("data/models/omnicodec",), params="codec",
        config="components.omnicodec.config:CodecConfig",
        pool="gpu", distributed=True,
    ),
    Stage(
        name="omnicodec_eval", group="omnicodec",
        description="ViSQOL, mel distance, SI-SDR and codebook usage of OmniCodec on held-out pieces, per bitrate.",
        argv=("codec", "eval", "--model", "data/models/omnicodec", "--curated", "data/curated", "--out", "data/eval/omnicodec"),
        deps=("data/models/omnicodec", "data/curated"), outs=("data/eval/omnicodec",),
        params="codec_eval", config="components.omnicodec.config:CodecEvalConfig",
    ),
    Stage(
        name="token_shards", group="tokens",
        description="The curated corpus encoded once with OmniCodec into memory-mappable shards + index.",
        argv=("tokens", "build", "--codec", "data/models/omnicodec", "--codec-eval", "data/eval/omnicodec",
              "--curated", "data/curated", "--captions", "data/captions", "--out", "data/tokens"),
        # reading the codec's evaluation puts the codec gate (a blocking check on it) before the shards
        deps=("data/models/omnicodec", "data/eval/omnicodec", "data/curated", "data/captions"), outs=("data/tokens",), params="tokens",
        config="components.tokens.config:TokensConfig",
        pool="gpu",                # encodes on the codec's device (cuda in the gpu / cluster profiles)
    ),
    Stage(
        name="conditioning_judge", group="judge",
        description="An audio classifier (instrument, collection) trained on real decoded music of training pieces only: "
                    "the independent judge of Lyra's conditioning.",
        argv=("judge", "train", "--tokens", "data/tokens", "--codec", "data/models/omnicodec", "--curated", "data/curated",
              "--out", "data/models/judge"),
        deps=("data/tokens", "data/models/omnicodec", "data/curated"), outs=("data/models/judge",), params="judge",
        config="components.judge.config:JudgeConfig",
        priority=-1,
    ),
    Stage(
        name="lyra_pretrain", group="lyra",
        description="Pretrain the Lyra text-to-music transformer (delay pattern, text + timing conditioning) with DeepSpeed.",
        argv=("lm", "train", "--tokens", "data/tokens", "--out", "data/models/lyra"),
        deps=("data/tokens",), outs=("data/models/lyra",), params="lm",
        config="components.lyra.config:LMConfig", pool="gpu", distributed=True,
        priority=1,
    ),
    Stage(
        name="lyra_samples", group="lyra",
        description="Music generated from held-out captions, decoded with OmniCodec, with conditioning metrics.",
        argv=("lm", "sample", "--model", "data/models/lyra", "--codec", "data/models/omnicodec",
              "--tokens", "data/tokens", "--judge", "data/models/judge", "--out", "data/samples/lyra"),
        deps=("data/models/lyra", "data/models/omnicodec", "data/tokens", "data/models/judge"), outs=("data/samples/lyra",), params="generate",
        config="components.lyra.config:GenerateConfig",
        priority=-1,
    ),
    Stage(
        name="lyra_rlaif", group="rlaif",
        description="Post-train Lyra with GRPO (TRL) against a reward model; held-out gain, KL, best-of-n, diversity.",
        argv=("rlaif", "train", "--model", "data/models/lyra", "--codec", "data/models/omnicodec",
              "--tokens", "data/tokens", "--judge", "data/models/judge", "--out", "data/models/lyra_rlaif"),
        # the reward model (rlaif.reward_model) is ORAQL: reading it puts its blocking gate before RLAIF
        deps=("data/models/lyra", "data/models/omnicodec", "data/tokens", "data/models/oraql", "data/models/judge"),
        outs=("data/models/lyra_rlaif",), params="rlaif", config="components.rlaif.config:RLAIFConfig",
        pool="gpu", priority=1,    # ORAQL -> RLAIF is the longest chain after Lyra's pretraining
    ),
    Stage(
        name="lyra_influence", group="influence",
        description="Influence: LoRA fine-tune of the pretrained Lyra with a reference-song conditioner (5 Hz quantised "
                    "bottleneck); influence index, two-choice and copy detectors on held-out pieces, bottleneck sweep.",
        # from the pretrained Lyra: on the tiny profile RLAIF's gain does not hold on test prompts and its gate
        # refuses the post-trained model, which must not be built upon (`lyra influence train --model
        # data/models/lyra_rlaif` starts from an accepted post-trained model)
        argv=("influence", "train", "--model", "data/models/lyra", "--codec", "data/models/omnicodec",
              "--tokens", "data/tokens", "--curated", "data/curated", "--judge", "data/models/judge",
              "--out", "data/models/lyra_influence"),
        deps=("data/models/lyra", "data/models/omnicodec", "data/tokens", "data/curated", "data/models/judge"),
        outs=("data/models/lyra_influence",),
        params="influence", config="components.influence.config:InfluenceConfig", pool="gpu",
    ),
    Stage(
        name="oraql", group="oraql",
        description="ORAQL music-quality model: a graded ladder of curated clips + Lyra generations early to late "
                    "(+ human ratings), selected on valid, correlations on held-out pieces.",
        argv=("oraql", "train", "--curated", "data/curated", "--codec", "data/models/omnicodec",
              "--lyra", "data/models/lyra", "--tokens", "data/tokens", "--out", "data/models/oraql"),
        deps=("data/curated", "data/models/omnicodec", "data/models/lyra", "data/tokens"), outs=("data/models/oraql",), params="oraql",
        config="components.oraql.config:OraqlConfig",
        priority=1,
    ),
    Stage(
        name="lyra_best_of_n", group="oraql",
        description="Best-of-n generation on held-out prompts: ORAQL's pick for n = 1, 2, 4, 8 (mean, worst, share "
                    "below the n = 1 median), and an independent judge on the same picks.",
        argv=("oraql", "best-of-n", "--lyra", "data/models/lyra", "--codec", "data/models/omnicodec",
              "--tokens", "data/tokens", "--oraql", "data/models/oraql", "--out", "data/eval/lyra_best_of_n",
              "--judge", "components.oraql.best_of_n:conditioning_judge", "--judge-model", "data/models/judge"),
        deps=("data/models/lyra", "data/models/omnicodec", "data/tokens", "data/models/oraql", "data/models/judge"),
        outs=("data/eval/lyra_best_of_n",),
        params="best_of_n", config="components.oraql.config:BestOfNConfig",
        priority=-1,
    ),
    Stage(
        name="lyra_scaling", group="scaling",
        description="Scaling laws: a sweep of small Lyra runs over sizes and token budgets, a fitted L(N, D) checked "
                    "on a held-out larger run, the compute-optimal size per FLOP budget and per number of codebooks.",
        argv=("scaling", "sweep", "--tokens", "data/tokens", "--out", "data/eval/scaling"),
        deps=("data/tokens",), outs=("data/eval/scaling",), params="scaling", runs=("lyra_pretrain",),
        config="components.scaling.config:ScalingConfig", extra_params=("lm",),
        pool="gpu", job="scaling",   # not in the lifecycle: minutes of extra training, run when sizing a model
    ),
)


@functools.lru_cache(maxsize=None)
def stage_code_paths(stage: Stage) -> tuple[str, ...]:
    from components.cli import build_command_parser
    from components.common import code_deps

    if not stage.argv:            # a stage that is not a `lyra` command (tests' stand-ins) has no tracked code
        return ()
    handler = build_command_parser(stage.argv[0]).parse_args(list(stage.argv[1:])).func
    params = load_params()
    configured = [(params.get(p) or {}).get(stage.params) for p in PROFILES]
    roots = code_deps.handler_roots(handler.__module__, handler.__name__) | code_deps.referenced_modules([stage.argv, configured])
    own = code_deps.source_files(code_deps.closure(roots, opaque=[handler.__module__]))
    return tuple(sorted(set(own).union(*(stage_code_paths(stage_by_name(name)) for name in stage.runs))))


def job_stages(job: str) -> list[Stage]:
    return [s for s in STAGES if s.job == job]


def stage_by_name(name: str) -> Stage:
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise KeyError(f"no stage named {name!r}; stages: {', '.join(s.name for s in STAGES)}")


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def upstream(stage: Stage, stages: Iterable[Stage] = STAGES) -> list[Stage]:
    """Stages whose outputs `stage` reads."""
    return [other for other in stages if other is not stage
            and any(_inside(dep, out) for dep in stage.deps for out in other.outs)]


def dvc_pipeline(params: dict | None = None) -> dict:
    """The dvc.yaml document for STAGES; params keys are listed for every profile that sets them."""
    params = load_params() if params is None else params
    doc: dict = {"stages": {}}
    for stage in STAGES:
        # the active profile's values are the base profile's with its own block on top (config.py):
        # a stage depends on those two blocks only, so editing another profile changes nothing here
        param_keys = ["profile"] + [key for section in (stage.params, *stage.extra_params)
                                    for key in (f"{BASE_PROFILE}.{section}", f"${{profile}}.{section}")]
        doc["stages"][stage.name] = {
            "desc": stage.description,
            "cmd": " ".join(stage.command),
            "deps": [*stage.deps, *stage.code_paths],
            "params": param_keys,
            "outs": list(stage.outs),
            "metrics": [{stage.metrics_path: {"cache": False}}],
            "meta": {"group": stage.group, "pool": stage.pool, "distributed": stage.distributed},
        }
    return doc


DVC_HEADER = "# Generated from components/pipeline.py by `lyra pipeline dvc-yaml --write`; do not edit by hand.\n"


def render_dvc_yaml(params: dict | None = None) -> str:
    return DVC_HEADER + yaml.safe_dump(dvc_pipeline(params), sort_keys=False, width=200)


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    lst = sub.add_parser("list", help="print the stages in dependency order with their commands")
    lst.set_defaults(func=_cmd_list)
    dy = sub.add_parser("dvc-yaml", help="print (or --write / --check) the dvc.yaml generated from the stage table")
    dy.add_argument("--write", action="store_true", help="write dvc.yaml in the current folder")
    dy.add_argument("--check", action="store_true", help="exit 1 if dvc.yaml differs from the generated one")
    dy.set_defaults(func=_cmd_dvc_yaml)


def _cmd_list(args) -> int:
    for stage in STAGES:
        ups = ", ".join(s.name for s in upstream(stage)) or "-"
        print(f"{stage.name:16s} [{stage.group}] <- {ups}\n    {' '.join(stage.command)}")
    return 0


def _cmd_dvc_yaml(args) -> int:
    text = render_dvc_yaml()
    target = Path("dvc.yaml")
    if args.check:
        same = target.is_file() and target.read_text() == text
        print("dvc.yaml is up to date" if same else "dvc.yaml differs from components/pipeline.py; run `make dvc-yaml`")
        return 0 if same else 1
    if args.write:
        from components.common.atomic import atomic_write_text

        atomic_write_text(target, text)
        print(f"wrote {target}")
    else:
        sys.stdout.write(text)
    return 0
