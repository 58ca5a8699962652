"""Asset checks, derived from the stages' declarations (components/<package>/declaration.py): each data
check re-validates what a stage wrote, each gate judges its metrics. Blocking checks stop downstream assets.

The one thing added here is Dagster's own memory: the codec gate also compares with the last codec an
earlier run of this instance accepted on the same clips (when the registry holds none).
"""

import os

import dagster as dg

from components.pipeline import NOT_MEASURABLE, STAGES, Check, Gate, Stage, gate_input, judge_gate, stage_config
from orchestration.launchers import REPO_ROOT


def _profile() -> str | None:
    return os.environ.get("LYRA_PROFILE")          # the profile the launcher runs (what the stage itself used)


def data_check(stage: Stage, check: Check) -> dg.AssetChecksDefinition:
    @dg.asset_check(name=check.name, asset=stage.name, blocking=check.blocking, description=check.description)
    def _check() -> dg.AssetCheckResult:
        from components.common.stage import resolve

        outcome = resolve(check.run)(REPO_ROOT, stage_config(stage, REPO_ROOT, _profile()))
        severity = dg.AssetCheckSeverity.ERROR if check.blocking else dg.AssetCheckSeverity.WARN
        return dg.AssetCheckResult(passed=bool(outcome.passed), description=outcome.description,
                                   metadata=outcome.metadata(), severity=severity)

    return _check


def _metadata(value):
    return dg.MetadataValue.json(value) if isinstance(value, list) else value


def gate_check(stage: Stage, gate: Gate) -> dg.AssetChecksDefinition:
    @dg.asset_check(name=gate.name, asset=stage.name, blocking=gate.blocking, description=gate.description)
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        metrics = gate_input(stage, gate, REPO_ROOT)
        cfg = stage_config(stage, REPO_ROOT, _profile())
        context_kwargs, extra = GATE_CONTEXT[gate.name](context, metrics) if gate.name in GATE_CONTEXT else ({}, {})
        verdict = judge_gate(stage, gate, metrics, cfg, **context_kwargs)
        fails_run = gate.blocking and (not gate.refusal_fails_run or bool(getattr(cfg, gate.refusal_fails_run)))
        description = verdict.summary
        if not verdict.passed:
            description = description.replace("failed:", "refused:" if gate.blocking else "missed:", 1)
        return dg.AssetCheckResult(
            passed=verdict.passed, description=description,
            severity=dg.AssetCheckSeverity.ERROR if fails_run else dg.AssetCheckSeverity.WARN,
            metadata={**{k: _metadata(v) for k, v in verdict.numbers.items()}, **extra,
                      **{f"rule.{k}": v for k, v in verdict.rules.items()},
                      **{f"rule.{k}": f"{NOT_MEASURABLE}: {why}" for k, why in verdict.not_measurable.items()}})

    return _check


# --- the codec gate's memory ------------------------------------------------------------------

def _eval_set_digest(metrics: dict) -> str:
    """Which clips a codec was scored on: two versions compare only on the same held-out set."""
    import hashlib

    return hashlib.sha1("\n".join(sorted(metrics.get("clip_ids", []))).encode()).hexdigest()[:16]


def _previous_accepted_codec(instance: dg.DagsterInstance, check_key: dg.AssetCheckKey, digest: str,
                             eval_set: str) -> dict | None:
    """Metadata of the most recent passed gate for a different codec version scored on the same clips."""
    records = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=50)
    for record in records:
        if record.status.value != "SUCCEEDED":      # the record status enum is not exported by `dagster`
            continue
        evaluation = record.event.dagster_event.event_specific_data if record.event else None
        meta = {k: v.value for k, v in (evaluation.metadata if evaluation else {}).items()}
        if meta.get("codec_digest") and meta["codec_digest"] != digest and meta.get("eval_set") == eval_set:
            return meta
    return None


def _registered_codec(eval_set: str) -> dict | None:
    """The codec production holds in the model registry (staging's if none), when it was scored on the same
    clips and is not the codec being checked: the gate's memory that survives a fresh Dagster instance."""
    import os

    from components.registry.gitrecord import RegistryGitError
    from components.registry.registry import Registry, RegistryError
    from components.registry.store import ArtifactError

    try:
        registry = Registry(REPO_ROOT, profile=os.environ.get("LYRA_PROFILE"))
        current = registry.current_digest("omnicodec")
        for stage in ("production", "staging"):
            version = registry.holder("omnicodec", stage)
            if version is None:
                continue
            entry = registry.entry("omnicodec", version)
            metrics = entry["metrics"].get("omnicodec_eval", {})
            if entry["artifact"]["digest"] != current and _eval_set_digest(metrics) == eval_set:
                return {"visqol": metrics.get("visqol"), "codec_digest": f"omnicodec@{version} ({stage})"}
    except (RegistryError, RegistryGitError, ArtifactError, OSError, KeyError):
        return None
    return None


def _codec_context(context: dg.AssetCheckExecutionContext, metrics: dict) -> tuple[dict, dict]:
    """The codec to compare with (production's in the registry, else this instance's last accepted one) and
    the metadata that lets a later run find this one."""
    from components.common.lineage import tree_digest

    model_dir = REPO_ROOT / "data" / "models" / "omnicodec"
    digest = tree_digest(model_dir / "model.safetensors", model_dir / "config.json")
    eval_set = _eval_set_digest(metrics)
    previous = _registered_codec(eval_set) or _previous_accepted_codec(context.instance, context.check_specs[0].key,
                                                                       digest, eval_set)
    return {"previous": previous}, {
        "codec_digest": digest, "eval_set": eval_set,
        "previous_visqol": previous.get("visqol") if previous else None,
        "previous_codec_digest": previous.get("codec_digest") if previous else None,
    }


# gate -> (context, metrics) -> (extra arguments for its rules, extra metadata)
GATE_CONTEXT = {"codec_gate": _codec_context}

checks = [data_check(stage, check) for stage in STAGES for check in stage.checks] \
    + [gate_check(stage, gate) for stage in STAGES for gate in stage.gates]
