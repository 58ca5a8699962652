"""Pods and TrainJobs whose Dagster run is over, deleted.

A stage's pod belongs to the run worker that launched it; that worker deletes it when the step ends, fails
or is cancelled (launcher.py). A run worker that dies itself (OOM-killed, its node lost) deletes nothing:
its GPU pods keep running, or sit finished, holding their node (dagster#14833). Run monitoring
(infra/helm/dagster-values.yaml) marks such a run failed; the reaper sensor then finds every object labelled
with a run id (`lyra.dev/run-id`, set by the launcher) whose run has ended, or that the instance does not
know, and deletes it.

    orphans(core, custom, namespace, run_status) -> [Orphan(kind, name, run_id, why)]
    reap(...)                                    -> the orphans, deleted
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import kubernetes

from orchestration.k8s.launcher import RUN_LABEL, PipesTrainJobClient, _delete

ENDED = {"SUCCESS", "FAILURE", "CANCELED"}


@dataclasses.dataclass(frozen=True)
class Orphan:
    kind: str          # Pod | TrainJob
    name: str
    run_id: str
    why: str           # the run's status, or "unknown run"


def orphans(core: kubernetes.client.CoreV1Api, custom: kubernetes.client.CustomObjectsApi, namespace: str,
            run_status: Callable[[str], str | None]) -> list[Orphan]:
    """Objects labelled with a run id whose run has ended (run_status: run id -> status name, None if unknown)."""
    found = []
    pods = core.list_namespaced_pod(namespace, label_selector=RUN_LABEL).items
    objects = [("Pod", p.metadata.name, (p.metadata.labels or {}).get(RUN_LABEL)) for p in pods]
    jobs = custom.list_namespaced_custom_object(PipesTrainJobClient.GROUP, PipesTrainJobClient.VERSION, namespace,
                                                PipesTrainJobClient.PLURAL, label_selector=RUN_LABEL)
    objects += [("TrainJob", j["metadata"]["name"], (j["metadata"].get("labels") or {}).get(RUN_LABEL))
                for j in jobs.get("items") or []]
    statuses: dict[str, str | None] = {}
    for kind, name, run_id in objects:
        if not run_id:
            continue
        if run_id not in statuses:
            statuses[run_id] = run_status(run_id)
        status = statuses[run_id]
        if status is None or status in ENDED:
            found.append(Orphan(kind, name, run_id, status or "unknown run"))
    return found


def reap(core: kubernetes.client.CoreV1Api, custom: kubernetes.client.CustomObjectsApi, namespace: str,
         run_status: Callable[[str], str | None]) -> list[Orphan]:
    gone = orphans(core, custom, namespace, run_status)
    for orphan in gone:
        if orphan.kind == "Pod":
            _delete(core.delete_namespaced_pod, orphan.name, namespace)
        else:          # its pods go with it
            _delete(custom.delete_namespaced_custom_object, PipesTrainJobClient.GROUP, PipesTrainJobClient.VERSION,
                    namespace, PipesTrainJobClient.PLURAL, orphan.name, propagation_policy="Foreground")
    return gone


def instance_run_status(instance) -> Callable[[str], str | None]:
    """run id -> its status name in this Dagster instance (None: no such run)."""
    def status(run_id: str) -> str | None:
        run = instance.get_run_by_id(run_id)
        return None if run is None else run.status.value
    return status
