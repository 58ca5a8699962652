"""Build one Dagster asset per stage of components/pipeline.py (as dagster-dbt does from a dbt project).

An asset's upstream assets are the stages whose outputs it reads; its code version is a digest
of the stage's source; materializing it
  1. asks DVC whether the stage is already up to date -> a fast no-op that re-reports metadata;
  2. otherwise starts the stage command through the launcher (Dagster Pipes), so its logs and
     metadata stream into the run;
  3. commits the result to DVC and records data version, code version and params.
"""


import json
from typing import Any

import dagster as dg

from components.common.lineage import code_version, tree_digest
from components.config import load_params, load_stage_config, profile_values
from components.pipeline import Stage, upstream
from components import partitions as corpus_partitions
from orchestration import fanout
from orchestration.dvc import DvcResource
from orchestration.integrity import check_lineage, check_lock
from orchestration.launchers import REPO_ROOT, StageLauncher, StageProcessFailed


class StageRunConfig(dg.Config):
    force: bool = False  # run the stage even when DVC says nothing it depends on changed


def stage_params(stage: Stage, profile: str) -> dict:
    """The stage's resolved config (params.yaml profile values over the class defaults)."""
    if stage.config:
        cfg = load_stage_config(stage.params, stage.config_class(), params_path=REPO_ROOT / "params.yaml", profile=profile)
        return cfg.model_dump(mode="json")
    return profile_values(load_params(REPO_ROOT / "params.yaml"), profile).get(stage.params) or {}


def _metrics_metadata(stage: Stage) -> dict[str, Any]:
    path = REPO_ROOT / stage.metrics_path
    if not path.is_file():
        return {}
    metrics = json.loads(path.read_text())
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}


def _data_version(stage: Stage, dvc: DvcResource) -> str:
    hashes = dvc.out_hashes(stage.name) if dvc.enabled else {}
    if hashes and all(hashes.values()):
        return ",".join(hashes[o] for o in stage.outs if o in hashes)[:64]
    return tree_digest(*[REPO_ROOT / o for o in stage.outs])


def materialize_stage(context: dg.AssetExecutionContext, stage: Stage, config: StageRunConfig,
                      launcher: StageLauncher, dvc: DvcResource) -> dg.MaterializeResult:
    lineage = {
        "command": dg.MetadataValue.text(" ".join(stage.command)),
        "profile": launcher.profile,
        "params": dg.MetadataValue.json(stage_params(stage, launcher.profile)),
        "code_version": context.assets_def.code_versions_by_key[context.asset_key],
        "dvc_stage": stage.name,
    }
    if not config.force and dvc.is_up_to_date(stage.name, run_id=context.run_id):
        # reused as it is: its outputs must have been made from the inputs there now (a hand-edited dvc.lock)
        check_lineage(dvc.repo, check_lock(dvc.repo), stage.name)
        context.log.info(f"{stage.name}: deps, params and outputs unchanged since the last run (dvc status): not re-run")
        return dg.MaterializeResult(
            metadata={**_metrics_metadata(stage), **lineage, "reused": True},
            data_version=dg.DataVersion(_data_version(stage, dvc)),
        )
    fanned = fan_out(context, stage, launcher, dvc) if stage.part_argv else {}
    try:
        invocation = launcher.launch(context, stage, extras={"stage": stage.name, "profile": launcher.profile})
    except StageProcessFailed as exc:
        if exc.killed_by_signal and context.retry_number < launcher.signal_retries:
            context.log.warning(f"{stage.name}: the stage process was killed by a signal ({exc}); starting it again")
            raise dg.RetryRequested(max_retries=launcher.signal_retries, seconds_to_wait=1) from exc
        raise
    reported = invocation.get_materialize_result()
    for out in stage.outs:
        if not (REPO_ROOT / out).exists():
            raise dg.Failure(f"{stage.name} finished but did not write {out}")
    dvc.commit(stage.name)
    if fanned.get("keys") is not None:
        gone = fanout.prune(REPO_ROOT, stage, fanned.pop("keys"))
        if gone:
            context.log.info(f"{stage.name}: removed the outputs of {len(gone)} partitions the listing no longer has")
    return dg.MaterializeResult(
        metadata={**(reported.metadata or {}), **lineage, **{f"fanout.{k}": v for k, v in fanned.items()},
                  "reused": False},
        data_version=dg.DataVersion(_data_version(stage, dvc)),
    )


def _partition_stamps(context, stage: Stage, launcher: StageLauncher, dvc: DvcResource,
                      keys: list[str]) -> dict[str, str]:
    # the code version is the asset's own (the stage's and its part asset's are the same digest): not re-hashed
    return fanout.expected_stamps(stage, keys, lambda up: _data_version(up, dvc), stage_params(stage, launcher.profile),
                                  context.assets_def.code_versions_by_key[context.asset_key])


def _launch_part(context, launcher: StageLauncher, part: Stage, key: str):
    return launcher.launch(context, part, extras={"stage": part.name, "partition": key, "profile": launcher.profile})


def fan_out(context: dg.AssetExecutionContext, stage: Stage, launcher: StageLauncher, dvc: DvcResource) -> dict:
    """Before the whole stage: its partitions that are not done, `partitions.concurrency` at once
    (orchestration/fanout.py). Nothing when the profile's concurrency is 0 (the stage's own workers do it all)."""
    config = corpus_partitions.load_config(launcher.profile, REPO_ROOT / "params.yaml")
    if config.concurrency == 0:
        return {}
    keys = [p.key for p in corpus_partitions.current(REPO_ROOT / fanout.CORPUS, config)]
    added, deleted = fanout.sync_partitions(context.instance, keys)
    if added or deleted:
        context.log.info(f"corpus partitions: {len(added)} added, {len(deleted)} deleted ({len(keys)} now)")
    expected = _partition_stamps(context, stage, launcher, dvc, keys)
    figures = fanout.run_partitions(context, stage, lambda part, key: _launch_part(context, launcher, part, key),
                                    REPO_ROOT, keys, expected, config.concurrency)
    return {**figures, "keys": keys}


def stage_asset(stage: Stage, check_specs: list[dg.AssetCheckSpec] | None = None) -> dg.AssetsDefinition:
    """The Dagster asset that materializes `stage` through the launcher resource."""

    @dg.asset(
        name=stage.name,
        group_name=stage.group,
        description=stage.description,
        # not on `<stage>_part`: a partition's output is a cache the stage may take work from, never an input it
        # needs (with no fan-out it is never made, and the UI would ask "are you sure?" before every run)
        deps=[up.name for up in upstream(stage)],
        code_version=code_version(*stage.code_paths),
        kinds={"pytorch" if stage.pool == "gpu" else "python", "dvc"},
        tags={"lyra/pool": stage.pool},
        op_tags={"dagster/priority": str(stage.priority)},   # the executor starts ready steps by priority
        metadata={"outputs": dg.MetadataValue.json(list(stage.outs)), "dvc_stage": stage.name,
                  "distributed": stage.distributed},
        check_specs=check_specs,
    )
    def _asset(context: dg.AssetExecutionContext, config: StageRunConfig,
               launcher: StageLauncher, dvc: DvcResource) -> dg.MaterializeResult:
        return materialize_stage(context, stage, config, launcher, dvc)

    return _asset


def part_asset(stage: Stage) -> dg.AssetsDefinition:
    """`<stage>_part`: the stage's work for one partition of the corpus listing (dynamic partitions), run through
    the launcher like the stage itself (its own pod on Kubernetes); backfills run at most the `lyra_fanout`
    pool's limit at once. The whole stage takes the result by content key (orchestration/fanout.py)."""

    @dg.asset(
        name=fanout.part_asset_name(stage),
        group_name=stage.group,
        description=f"{stage.name} for one partition of the corpus listing: the per-file work the whole stage "
                    f"takes by content key ({stage.parts_dir}/<partition>/).",
        partitions_def=fanout.PARTITIONS,
        deps=[up.name for up in upstream(stage)],
        code_version=code_version(*stage.code_paths),
        kinds={"pytorch" if stage.pool == "gpu" else "python"},
        tags={"lyra/pool": stage.pool},
        pool=fanout.POOL,
        metadata={"outputs": dg.MetadataValue.json([f"{stage.parts_dir}/<partition>"]), "whole_stage": stage.name},
    )
    def _asset(context: dg.AssetExecutionContext, launcher: StageLauncher, dvc: DvcResource) -> dg.MaterializeResult:
        key = context.partition_key
        expected = _partition_stamps(context, stage, launcher, dvc, [key])[key]
        done = fanout.is_done(REPO_ROOT, stage, key, expected)
        if done:
            context.log.info(f"{stage.name} partition {key}: made from the same inputs already; not re-run")
        else:
            fanout.run_one(REPO_ROOT, stage, key, expected, lambda part, k: _launch_part(context, launcher, part, k))
        return dg.MaterializeResult(metadata={**fanout.part_metrics(REPO_ROOT, stage, key), "reused": done})

    return _asset
