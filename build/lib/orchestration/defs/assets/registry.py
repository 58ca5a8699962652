"""Registry: one asset per model in params.yaml `registry.models`, registering what its stage built.

`registry/<model>` sits downstream of the model's stage, its evaluation stages (so their blocking
checks stand before it) and its parents' registry assets (so lineage names their versions). A
materialization with unchanged weights is a no-op: the registry returns the existing version.
"""


import os

import dagster as dg

from components.common.lineage import code_version
from components.pipeline import STAGES
from components.registry.config import STAGES as REGISTRY_STAGES
from components.registry.registry import load_registry_config
from orchestration.launchers import REPO_ROOT
from orchestration.registry import RegistryResource

REGISTRY_CODE = ("components/registry",)


def registry_key(model: str) -> dg.AssetKey:
    return dg.AssetKey(["registry", model])


def registered_models() -> dict:
    """Models of the registry config whose stage exists in this checkout's pipeline."""
    config = load_registry_config(REPO_ROOT, os.environ.get("LYRA_PROFILE"))
    stages = {s.name for s in STAGES}
    return {name: spec for name, spec in config.models.items() if spec.stage in stages}


def registry_asset(model: str, spec, known: set[str]) -> dg.AssetsDefinition:
    deps = [spec.stage, *spec.evaluations, *[registry_key(p) for p in spec.parents if p in known]]

    @dg.asset(
        key=registry_key(model), group_name="registry", deps=deps, kinds={"python"},
        description=f"{model}: the weights its stage `{spec.stage}` built, as a registry version (GTO tag "
                    f"{model}@vX.Y.Z, candidate) with lineage, recorded checks and an evaluation report.",
        code_version=code_version(*REGISTRY_CODE),
    )
    def _asset(context: dg.AssetExecutionContext, registry: RegistryResource) -> dg.MaterializeResult:
        reg = registry.open()
        entry, created = reg.register(model, actor="dagster")
        holders = {stage: reg.holder(model, stage) for stage in REGISTRY_STAGES}
        failed = [c for c, r in entry["checks"].items() if not r["passed"]]
        context.log.info(f"{model} {entry['version']} {'registered' if created else 'already registered (no-op)'}")
        return dg.MaterializeResult(
            metadata={
                "version": entry["version"],
                "registered": created,
                "report": dg.MetadataValue.url(registry.report_url(entry["report"])) if entry.get("report") else None,
                "report_path": dg.MetadataValue.path(entry.get("report", "")),
                "artifact_digest": entry["artifact"]["digest"],
                "artifact_bytes": sum(f["bytes"] for f in entry["artifact"]["files"].values()),
                "artifact_files": dg.MetadataValue.json(sorted(entry["artifact"]["files"])),
                "parents": dg.MetadataValue.json({p: v["version"] for p, v in entry["lineage"]["parents"].items()}),
                "checks_failed": ", ".join(failed) or "none",
                "stage_holders": dg.MetadataValue.json(holders),
                "git_revision": entry["lineage"]["git_revision"],
                "entry": dg.MetadataValue.path(f"{reg.config.records}/{model}/{entry['version']}.json"),
            },
            data_version=dg.DataVersion(entry["artifact"]["digest"][:16]),
        )

    return _asset


def _assets() -> list[dg.AssetsDefinition]:
    models = registered_models()
    return [registry_asset(name, spec, set(models)) for name, spec in models.items()]


assets = _assets()
