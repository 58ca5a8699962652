"""What a lifecycle stage is, as the pipeline sees it: one declaration in the stage's own package.

    components/<package>/declaration.py   STAGES = (Stage(...), ...)   each with its checks and gates
    components/pipeline.py                collects the packages' STAGES (one line per package)
    Stage(..., checks=(Check,), gates=(Gate,), registers=Model(...))
        -> dvc.yaml, the Dagster assets and asset checks, the registry's promotion checks and the
           Kubernetes stage table's defaults are all derived from these declarations

A `Check` re-validates what a stage wrote (a data check: every clip captioned, codes in range).
A `Gate` is a named set of rules on the stage's metrics, with thresholds from the stage's config:
a blocking gate stops downstream stages in Dagster and a promotion in the registry.

Nothing here imports a model library: the declarations are read by `lyra --help`, Dagster's code
location and the registry, so the functions they name ("module:function") load only when called.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Callable

METRICS_DIR = "data/metrics"
PARTS_DIR = "data/parts"          # partitions' outputs: caches the whole stages take work from, not DVC data


def resolve(reference: str) -> Callable:
    """"package.module:function" -> the function (imported on first use)."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


NOT_MEASURABLE = "not measurable on this corpus"


@dataclasses.dataclass(frozen=True)
class NotMeasurable:
    """A gate rule's answer when the corpus lacks what the rule needs (a library without instrument tags has
    no truth for the judge's instrument head): shown with its reason, neither passed nor failed, never silent."""

    reason: str

    def __str__(self) -> str:
        return f"{NOT_MEASURABLE}: {self.reason}"


def not_measurable(metrics: dict, key: str) -> NotMeasurable | None:
    """The stage's own word that `key` could not be measured (metrics["not_measurable"][key]), if it said so."""
    reason = (metrics.get("not_measurable") or {}).get(key)
    return NotMeasurable(reason) if reason else None


@dataclasses.dataclass(frozen=True)
class CheckOutcome:
    """What a data check found: its verdict, one line for people, the figures behind it."""

    passed: bool
    description: str
    details: dict

    def metadata(self) -> dict:
        return {k: v for k, v in self.details.items() if isinstance(v, (int, float, str, bool))}


@dataclasses.dataclass(frozen=True)
class Check:
    """A data check on a stage's outputs: `run(repo, cfg) -> CheckOutcome`, cfg = the stage's typed config."""

    name: str
    description: str
    run: str                       # "module:function"
    blocking: bool = True          # False: a warning, reported and never stopping anything


@dataclasses.dataclass(frozen=True)
class Gate:
    """Named rules on a stage's metrics: `rules(metrics, cfg) -> {rule: passed | NotMeasurable}`. No rules =
    accepted (the stage's config turned them off); a NotMeasurable rule is reported, not counted. Blocking gates stop downstream assets and are required by every
    promotion of a model the stage builds or evaluates (components/registry/checks.py)."""

    name: str
    description: str
    rules: str                     # "module:function" (metrics: dict, cfg, **context) -> {rule: bool}
    numbers: tuple[str, ...] = ()  # metrics shown beside the verdict ("a.b" = nested; lists are intervals)
    blocking: bool = True          # False: a warning (a target to report, never a promotion rule)
    source: str = ""               # the JSON file the rules read (default: the stage's metrics file)
    key: str = ""                  # ... or a key inside it ("metrics": evaluation.json's metrics block)
    # a config field that says whether a refusal fails the Dagster run ("" = always); either way the
    # refused version stays a candidate in the registry
    refusal_fails_run: str = ""


@dataclasses.dataclass(frozen=True)
class Model:
    """The model a stage builds, as the registry records it (params.yaml `registry.models.<name>` adds the
    no-regression rules and may override any field)."""

    name: str                                # registry name: `lyra promote <name> ...`, `<name>@production`
    evaluations: tuple[str, ...] = ()        # stages whose metrics, plots and audio describe a version
    parents: tuple[str, ...] = ()            # models it is built from (their versions are recorded)
    weights: tuple[str, ...] = ()            # deployable files globbed in its folder (default: the registry's)

    def registry_entry(self, stage: str) -> dict:
        entry = {"stage": stage, "evaluations": list(self.evaluations), "parents": list(self.parents)}
        return {**entry, "weights": list(self.weights)} if self.weights else entry


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str                    # Dagster asset key and DVC stage name
    group: str                   # lifecycle group (Dagster asset group) = the package that declares it
    description: str
    argv: tuple[str, ...]        # the `lyra` command, without the shared --metrics option
    deps: tuple[str, ...]        # data paths read (other stages' outputs or raw inputs)
    outs: tuple[str, ...]        # paths written, each a folder replaced atomically
    params: str                  # params.yaml section, looked up in every profile
    config: str = ""             # "module:Class" of the typed config that validates the params section
    pool: str = "cpu"            # Kubernetes node pool: cpu | gpu
    distributed: bool = False    # trains with torchrun/DeepSpeed (nproc from the params section)
    extra_params: tuple[str, ...] = ()   # further params sections the stage reads (DVC tracks them too)
    # fields of its config that name a file it reads (e.g. ORAQL's human ratings table): where the active
    # profile sets one, that file is a dependency too, so a changed table re-runs the stage
    config_inputs: tuple[str, ...] = ()
    # a field of its config naming a corpus source (components/corpus/sources.py): a local library is a
    # dependency DVC hashes; an S3 prefix makes the stage `always_changed` (it re-lists the prefix)
    source_field: str = ""
    job: str = "lifecycle"       # the Dagster job that runs it; only `lifecycle` runs in `lyra demo` by default
    runs: tuple[str, ...] = ()   # stages whose command this one starts in subprocesses (their code is its code too)
    # Which ready stage the executor starts first (higher first), so that the longest chain is never the one
    # left waiting (on tiny: ORAQL -> RLAIF after Lyra's pretraining, 4 min of the last 5)
    priority: int = 0
    # reads its previous output to redo only what changed (curation, captioning): DVC must not delete the
    # outputs before running it (`persist: true`); the stage still replaces them whole and atomically
    incremental: bool = False
    # The stage's share of work for one partition of the corpus listing (components/partitions.py): its
    # `lyra` command with `{partition}` where the key goes, writing data/parts/<name>/<key>/ that the whole stage
    # takes unchanged work from (`--parts`). Dagster shows it as the partitioned asset `<name>_part`
    # (orchestration/fanout.py); not a DVC stage: a partition's output is a cache, the whole stage's is the data.
    part_argv: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()
    gates: tuple[Gate, ...] = ()
    registers: Model | None = None   # the model the registry versions from this stage's first output
    metrics_file: str = ""           # where the command writes its metrics (default: data/metrics/<name>.json)

    def config_class(self):
        return resolve(self.config)

    @property
    def metrics_path(self) -> str:
        return self.metrics_file or f"{METRICS_DIR}/{self.name}.json"

    @property
    def parts_dir(self) -> str:
        return f"{PARTS_DIR}/{self.name}"

    def part(self, key: str) -> "Stage":
        """The stage as it runs partition `key`: its part command, its metrics beside the partition's output."""
        if not self.part_argv:
            raise ValueError(f"stage {self.name} has no per-partition command")
        return dataclasses.replace(self, argv=tuple(a.replace("{partition}", key) for a in self.part_argv),
                                   part_argv=(), checks=(), gates=(), registers=None,
                                   metrics_file=f"{self.parts_dir}/{key}.metrics.json")

    @property
    def command(self) -> list[str]:
        return ["lyra", *self.argv, "--metrics", self.metrics_path]

    @property
    def code_paths(self) -> tuple[str, ...]:
        """The source files the stage's command imports (DVC deps, Dagster code_version): see code_deps.py."""
        from components.pipeline import stage_code_paths   # the table of every stage sits above this module

        return stage_code_paths(self)

    def gate_source(self, gate: Gate) -> str:
        return gate.source or self.metrics_path

