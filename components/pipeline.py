"""The stage graph: the stages every package declares, collected; the one source of dvc.yaml and Dagster.

Each `Stage` (components/common/stage.py) is one lifecycle step, declared in its own package's
`declaration.py`: a `lyra` command, the data it reads, what it writes, its params section and config,
its checks and gates, the model it registers. This module collects them (STAGE_PACKAGES) and derives:

* `lyra pipeline dvc-yaml --write` -> `dvc.yaml`, so `dvc repro` runs the same commands;
* orchestration/ -> one Dagster asset per stage (upstream assets = the stages whose outputs it reads)
  and one asset check per check and gate;
* the registry -> each declared model and the blocking gates its promotion requires (judge_gate).

`tests/test_pipeline_graph.py` fails if the committed dvc.yaml or the Dagster asset graph disagree with
the declarations; `tests/test_add_a_stage.py` adds a toy stage with one line here.

         corpus -> curated_clips -> captions ----------------+
                         |                                   v
                         +-> omnicodec -> omnicodec_eval    token_shards -> lyra_pretrain -> lyra_samples
                         |        +--------------------------^                   +-> lyra_rlaif
                         |                                                            +-> lyra_influence
                         +-----------------------------------------------> oraql -> lyra_best_of_n
                                          (lyra_pretrain, lyra_rlaif, oraql) -> oraql_audit

    token_shards -> lyra_scaling    (job `scaling`, on request: `lyra demo --job scaling`, `dvc repro lyra_scaling`)
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import importlib
import sys
from pathlib import Path
from typing import Iterable

import yaml

from components.common.metrics import at
from components.common.stage import (  # noqa: F401  (the names stages are declared with)
    METRICS_DIR,
    NOT_MEASURABLE,
    Check,
    Gate,
    NotMeasurable,
    Stage,
)
from components.config import BASE_PROFILE, PROFILES, load_params, load_stage_config, profile_values

# The packages that declare stages (components/<package>/declaration.py), in lifecycle order: adding a
# stage is its package plus one line here
STAGE_PACKAGES = ("corpus", "curation", "captioning", "omnicodec", "tokens", "judge", "lyra", "rlaif",
                  "influence", "oraql", "audit", "scaling")


def collect(modules: Iterable[str]) -> tuple[Stage, ...]:
    """Every stage the declaration modules declare, names unique, each package's stages in its group."""
    stages = tuple(stage for module in modules for stage in importlib.import_module(module).STAGES)
    names = [s.name for s in stages]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"stages declared twice: {', '.join(repeated)}")
    return stages


STAGES: tuple[Stage, ...] = collect(f"components.{package}.declaration" for package in STAGE_PACKAGES)


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


def stage_config(stage: Stage, repo: Path, profile: str | None):
    """The stage's typed config for `profile` (what the stage itself ran with)."""
    return load_stage_config(stage.params, stage.config_class(), params_path=repo / "params.yaml", profile=profile)


@dataclasses.dataclass(frozen=True)
class GateVerdict:
    passed: bool
    rules: dict[str, bool]     # rule -> passed; empty = every rule turned off by the config (accepted)
    numbers: dict              # the gate's declared figures found in what it read (numbers and intervals)
    # rule -> why the corpus cannot show it (no instrument tags, no valid split): neither passed nor failed
    not_measurable: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def summary(self) -> str:
        """One line: what passed or failed, and what this corpus could not measure."""
        if self.passed:
            said = f"passed: {', '.join(self.rules)}" if self.rules else (
                "passed: every rule turned off by the config" if not self.not_measurable else "nothing measured")
        else:
            said = f"failed: {', '.join(self.failed)}"
        unmeasured = "; ".join(f"{rule}: {reason}" for rule, reason in self.not_measurable.items())
        return said + (f"; {NOT_MEASURABLE} - {unmeasured}" if unmeasured else "")

    @property
    def failed(self) -> list[str]:
        return [name for name, ok in self.rules.items() if not ok]

    @property
    def scalars(self) -> dict:
        """The figures without the intervals: what the registry records and `lyra stability` spreads."""
        return {k: v for k, v in self.numbers.items() if not isinstance(v, list)}


def gate_figures(gate: Gate, metrics: dict) -> dict:
    """The gate's declared numbers ("a.b" = nested) found in `metrics`: numbers, and intervals as lists."""
    out = {}
    for key in gate.numbers:
        try:
            value = at(metrics, key)
        except KeyError:
            continue
        plain = isinstance(value, (int, float)) and not isinstance(value, bool)
        if plain or (isinstance(value, list) and all(isinstance(v, (int, float)) for v in value)):
            out[key] = value
    return out


def gate_input(stage: Stage, gate: Gate, repo: Path) -> dict:
    """What the gate's rules read: the stage's metrics file, or its declared source."""
    path = repo / stage.gate_source(gate)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics for stage {stage.name} (gate {gate.name}); run the stage first")
    return json.loads(path.read_text())


def judge_gate(stage: Stage, gate: Gate, metrics: dict, cfg, **context) -> GateVerdict:
    """The gate's rules on `metrics` (a metrics dict, wherever it was written) with the stage's config."""
    from components.common.stage import resolve

    answers = resolve(gate.rules)(metrics, cfg, **context)
    rules = {name: bool(ok) for name, ok in answers.items() if not isinstance(ok, NotMeasurable)}
    unmeasured = {name: ok.reason for name, ok in answers.items() if isinstance(ok, NotMeasurable)}
    return GateVerdict(all(rules.values()), rules, gate_figures(gate, metrics), unmeasured)


def blocking_gates(stage: Stage) -> list[Gate]:
    """The gates that stop downstream stages and a promotion (the rest are reported targets)."""
    return [gate for gate in stage.gates if gate.blocking]


def gates_by_name(stages: Iterable[Stage] | None = None) -> dict[str, tuple[Stage, Gate]]:
    return {gate.name: (stage, gate) for stage in (STAGES if stages is None else stages) for gate in stage.gates}


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


def dvc_pipeline(params: dict | None = None, stages: Iterable[Stage] | None = None) -> dict:
    """The dvc.yaml document for STAGES; params keys are listed for every profile that sets them."""
    params = load_params() if params is None else params
    doc: dict = {"stages": {}}
    for stage in STAGES if stages is None else stages:
        # the active profile's values are the base profile's with its own block on top (config.py):
        # a stage depends on those two blocks only, so editing another profile changes nothing here
        param_keys = ["profile"] + [key for section in (stage.params, *stage.extra_params)
                                    for key in (f"{BASE_PROFILE}.{section}", f"${{profile}}.{section}")]
        section = profile_values(params).get(stage.params) or {}
        configured = [section[field] for field in stage.config_inputs if section.get(field)]
        source = _corpus_source(stage, section)
        if source is not None and source.dvc_dependency:
            configured.append(source.dvc_dependency)
        doc["stages"][stage.name] = {
            "desc": stage.description,
            "cmd": " ".join(stage.command),
            "deps": [*stage.deps, *configured, *stage.code_paths],
            "params": param_keys,
            "outs": [{out: {"persist": True}} for out in stage.outs] if stage.incremental else list(stage.outs),
            "metrics": [{stage.metrics_path: {"cache": False}}],
            "meta": {"group": stage.group, "pool": stage.pool, "distributed": stage.distributed},
        }
        if source is not None and source.always_changed:
            doc["stages"][stage.name]["always_changed"] = True
    return doc


def _corpus_source(stage: Stage, section: dict):
    from components.corpus.sources import parse

    return parse(section[stage.source_field]) if stage.source_field and section.get(stage.source_field) else None


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
