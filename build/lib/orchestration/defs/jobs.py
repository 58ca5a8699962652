"""Jobs: one per `job` of components/pipeline.py's stages, and promotion of a registered model version.

    lifecycle  every stage from the demo corpus to Influence (`lyra demo`, the schedule, the sensors),
               then every model's registry version
    scaling    the scaling-law sweep (`lyra demo --job scaling`): minutes of extra training that a
               team runs when sizing a model, not on every data change; it reads the token shards
               the lifecycle built and does not rebuild them
    promote    `lyra promote` from Dagster; <model>_to_registry: one model's slice of the lifecycle
"""

import dagster as dg

from components.pipeline import job_stages
from orchestration.registry import RegistryResource

REGISTRY_GROUP = "registry"
JOB_DESCRIPTIONS = {
    "lifecycle": "Every stage from the demo corpus to Influence, skipping stages DVC reports unchanged, "
                 "then every model's registry version.",
    "scaling": "Scaling laws: sweep small Lyra runs, fit L(N, D), recommend a size per FLOP budget (reuses unchanged runs).",
}


def job_selection(job: str) -> dg.AssetSelection:
    selection = dg.AssetSelection.assets(*[s.name for s in job_stages(job)])
    return selection | dg.AssetSelection.groups(REGISTRY_GROUP) if job == "lifecycle" else selection


def stage_concurrency() -> int:
    """Steps of the lifecycle run at once ($LYRA_STAGE_CONCURRENCY, default 2). After Lyra's pretraining the
    graph fans out into one-core stages (ORAQL -> RLAIF beside Influence, the samples and best-of-n). Measured
    on 2 cores it showed no gain (one run each: 20.1 min against 19.7 one at a time): Lyra's two DeepSpeed
    processes beside the judge ran slower than the two in turn, and ORAQL -> RLAIF, the longest chain,
    started last. A stage's results do not depend on what runs beside it: each runs with a fixed thread
    count (its config's, else OMP_NUM_THREADS)."""
    import os

    return max(1, int(os.environ.get("LYRA_STAGE_CONCURRENCY", "2")))


# forkserver: a step process forks from one that has imported Dagster and the definitions once
lifecycle_job = dg.define_asset_job(
    "lifecycle", selection=job_selection("lifecycle"), description=JOB_DESCRIPTIONS["lifecycle"],
    executor_def=dg.multiprocess_executor.configured(
        {"max_concurrent": stage_concurrency(),
         "start_method": {"forkserver": {"preload_modules": ["orchestration.definitions"]}}}))
# the sweep's runs share the cores among themselves: its one step runs in-process
scaling_job = dg.define_asset_job("scaling", selection=job_selection("scaling"),
                                  executor_def=dg.in_process_executor, description=JOB_DESCRIPTIONS["scaling"])



def _model_jobs() -> list:
    """`<model>_to_registry`: one model's stages and its registry version, nothing else (e.g. the codec alone)."""
    from orchestration.defs.assets.registry import registered_models, registry_key

    return [dg.define_asset_job(f"{model}_to_registry", selection=dg.AssetSelection.assets(registry_key(model)).upstream(),
                                executor_def=dg.in_process_executor,
                                description=f"The stages {model} is built from, then its registry version")
            for model in registered_models()]


model_jobs = _model_jobs()


class PromotionConfig(dg.Config):
    """The same request as `lyra promote MODEL VERSION --to STAGE --reason TEXT [--force --actor NAME]`."""

    model: str
    version: str = "latest"            # vX.Y.Z, or the newest registered version
    to_stage: str = "staging"          # staging | production
    reason: str
    force: bool = False
    actor: str = ""                    # required with force; default: the git user


@dg.op(description="Promote a registry version through its gates; a refusal fails the run and names the gates")
def promote_model(context: dg.OpExecutionContext, config: PromotionConfig, registry: RegistryResource) -> dict:
    from components.registry.promote import promote

    decision = promote(registry.open(), config.model, config.version, config.to_stage, config.reason,
                       force=config.force, actor=config.actor or None)
    metadata = {
        "outcome": decision.outcome, "model": decision.model, "version": decision.version,
        "to_stage": decision.to_stage, "actor": decision.actor, "reason": decision.reason,
        "previous_holder": decision.previous_holder or "none", "tag": decision.tag or "none",
        "failed_gates": ", ".join(g.name for g in decision.failed) or "none",
        "gates": dg.MetadataValue.json([{"gate": g.name, "passed": g.passed, "detail": g.detail, "numbers": g.numbers}
                                        for g in decision.gates]),
    }
    context.log.info(decision.summary())
    if decision.outcome == "refused":
        failed = "; ".join(f"{g.name}: {g.detail}" for g in decision.failed)
        raise dg.Failure(description=f"promotion refused by gate {failed}", metadata=metadata)
    context.add_output_metadata(metadata)
    return decision.to_json()


@dg.job(name="promote", executor_def=dg.in_process_executor, description="Promote a model version (the Dagster side of `lyra promote`); decisions go to registry/audit.jsonl")
def promote_job():
    promote_model()
