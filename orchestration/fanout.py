"""Curation, captioning and token encoding fanned out over partitions of the corpus listing.

    corpus ──► listing ──► partitions (components/partitions.py; Dagster dynamic partitions
                           `corpus_partitions`, added and deleted as the listing's keys move)
    <stage>_part[key]      the stage's per-partition command (Stage.part_argv) through the launcher:
                           a pod per partition on Kubernetes, a subprocess locally; writes data/parts/<stage>/<key>/
    <stage>                the whole stage (unpartitioned, a DVC stage): catalogue-wide decisions, taking every
                           file's or clip's work from the partitions' outputs by content key

Two ways to run the partitions: a backfill of `<stage>_part` from the UI (one run per partition, at most the
pool `lyra_fanout`'s limit at once across runs), or the lifecycle itself: when the profile's
`partitions.concurrency` is > 0, the whole stage's step first runs the partitions it lacks, that many at once
(a thread each, waiting on its pod or process), records each as a materialization of `<stage>_part`, and then
runs its own command, which finds the work done. A partition is done when its output exists with the stamp
of the inputs it was made from (upstream data versions, the stage's code and params, the key); a failed
partition fails the step after the others finish, and a retry runs only what is not done.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import shutil
from pathlib import Path
from typing import Callable

import dagster as dg

from components import partitions as corpus_partitions
from components.pipeline import Stage, upstream

PARTITIONS = dg.DynamicPartitionsDefinition(name="corpus_partitions")
POOL = "lyra_fanout"          # a concurrency pool: backfills of the part assets run at most its limit at once
CORPUS = "data/corpus"


def part_asset_name(stage: Stage) -> str:
    return f"{stage.name}_part"


def partition_changes(known, keys: list[str]) -> tuple[list[str], list[str]]:
    """(keys to add, keys to delete) to make the dynamic partitions `known` the listing's `keys`."""
    known = set(known)
    return [k for k in keys if k not in known], sorted(known - set(keys))


def sync_partitions(instance: dg.DagsterInstance, keys: list[str]) -> tuple[list[str], list[str]]:
    """Make the dynamic partitions the listing's keys: (added, deleted)."""
    added, deleted = partition_changes(instance.get_dynamic_partitions(PARTITIONS.name), keys)
    if added:
        instance.add_dynamic_partitions(PARTITIONS.name, added)
    for key in deleted:
        instance.delete_dynamic_partition(PARTITIONS.name, key)
    return added, deleted


def stamp(stage: Stage, key: str, upstream_versions: dict[str, str], params: dict, code: str) -> str:
    """What a partition's output was made from: when this is unchanged, the output is still right."""
    text = json.dumps({"key": key, "upstream": upstream_versions, "params": params, "code": code}, sort_keys=True)
    return hashlib.md5(text.encode()).hexdigest()


def stamp_path(repo: Path, stage: Stage, key: str) -> Path:
    return repo / stage.parts_dir / f"{key}.stamp"


def is_done(repo: Path, stage: Stage, key: str, expected: str) -> bool:
    path = stamp_path(repo, stage, key)
    return (repo / stage.parts_dir / key).is_dir() and path.is_file() and path.read_text().strip() == expected


def prune(repo: Path, stage: Stage, keys: list[str]) -> list[str]:
    """Remove the outputs of partitions the listing no longer has (their files changed or left)."""
    root = repo / stage.parts_dir
    gone = []
    for folder in corpus_partitions.part_folders(root):
        if folder.name not in keys:
            shutil.rmtree(folder, ignore_errors=True)
            for suffix in (".stamp", ".metrics.json"):
                (root / f"{folder.name}{suffix}").unlink(missing_ok=True)
            gone.append(folder.name)
    return gone


def run_one(repo: Path, stage: Stage, key: str, expected: str, launch: Callable[[Stage, str], object]) -> None:
    """Run partition `key` of `stage` through `launch` and stamp its output with what it was made from."""
    launch(stage.part(key), key)
    stamp_path(repo, stage, key).write_text(expected + "\n")


def part_metrics(repo: Path, stage: Stage, key: str) -> dict:
    path = repo / stage.part(key).metrics_path
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}


def run_partitions(context: dg.AssetExecutionContext, stage: Stage, launch: Callable[[Stage, str], object], repo: Path,
                   keys: list[str], expected: dict[str, str], concurrency: int) -> dict:
    """Run the partitions of `keys` that are not done, `concurrency` at once; record each as a materialization
    of `<stage>_part`. Raises dg.Failure naming every partition that failed (after the rest have finished)."""
    to_run = [k for k in keys if not is_done(repo, stage, k, expected[k])]
    context.log.info(f"{stage.name}: {len(keys)} partitions, {len(keys) - len(to_run)} done, {len(to_run)} to run "
                     f"({concurrency} at once)")
    failed: dict[str, str] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = {pool.submit(run_one, repo, stage, key, expected[key], launch): key for key in to_run}
        for future in concurrent.futures.as_completed(futures):
            key = futures[future]
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001 - every partition's failure is named below, none is lost
                failed[key] = f"{type(exc).__name__}: {exc}"
                context.log.error(f"{stage.name} partition {key} failed: {exc}")
                continue
            context.log_event(dg.AssetMaterialization(
                asset_key=part_asset_name(stage), partition=key,
                metadata={**part_metrics(repo, stage, key), "launched_by": stage.name}))
    if failed:
        listed = "; ".join(f"{k}: {why}" for k, why in sorted(failed.items()))
        raise dg.Failure(description=f"{stage.name}: {len(failed)} of {len(to_run)} partitions failed ({listed})",
                         metadata={"failed_partitions": dg.MetadataValue.json(sorted(failed))})
    return {"partitions": len(keys), "partitions_run": len(to_run), "partitions_done_before": len(keys) - len(to_run)}


def expected_stamps(stage: Stage, keys: list[str], upstream_version: Callable[[Stage], str], params: dict,
                    code: str) -> dict[str, str]:
    versions = {up.name: upstream_version(up) for up in upstream(stage)}
    return {key: stamp(stage, key, versions, params, code) for key in keys}
