"""Stage -> Kubernetes spec: a Pod for single-pod stages, a Kubeflow Trainer TrainJob for Lyra.

The command is the stage's own `lyra ...` command from components/pipeline.py, unchanged;
everything around it comes from infra/stages.yaml (orchestration/k8s/table.py):

    Pod (dagster_k8s.pipes.build_pod_body)           TrainJob (trainer.kubeflow.org/v1alpha1)
      nodeSelector/tolerations  <- pool                spec.runtimeRef      -> lyra-torch-distributed
      securityContext           <- non-root, seccomp   spec.trainer         image, torchrun + command,
      containers[0]                                                         env, numNodes,
        command, env (+ Secret refs), resources                             numProcPerNode, resources
        securityContext  read-only root, no caps       spec.runtimePatches  the same placement, volumes
        volumeMounts     data, scratch, /dev/shm                            and security as a Pod
      volumes            PVC, emptyDirs, Memory shm

Pipes' bootstrap variables (DAGSTER_PIPES_CONTEXT/MESSAGES) are added by the launcher at run time.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import kubernetes
from dagster_k8s.pipes import build_pod_body
from kubeflow_trainer_api import models as trainer

from components.config import load_stage_config
from components.pipeline import Stage
from orchestration.launchers import stage_process_env
from orchestration.k8s.table import REPO_ROOT, StageRow, Table, default_table

GPU = "nvidia.com/gpu"
TRAINER_API = "trainer.kubeflow.org/v1alpha1"
TRAINER_CONTAINER = "node"          # the trainer container's name in the torch-distributed runtimes
LAUNCHER_MANAGER = "lyra.dev/launcher"
STAGE_LABEL = "lyra.dev/stage"


def k8s_name(text: str, limit: int = 63) -> str:
    """A DNS-1123 label from any text: lower case, [a-z0-9-], starts and ends alphanumeric."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return name[:limit].rstrip("-") or "x"


def stage_nproc(stage: Stage, profile: str, overrides: Sequence[str] = ()) -> int:
    """Processes per node of a distributed stage, from its params section (`nproc`)."""
    cfg = load_stage_config(stage.params, stage.config_class(), params_path=REPO_ROOT / "params.yaml", profile=profile,
                            overrides=overrides)
    return int(getattr(cfg, "nproc", 1))


# ------------------------------------------------------------------------------ pieces of a pod
def resources(row: StageRow, memory: str | None = None) -> dict:
    """requests/limits: memory limit = request unless said otherwise; GPUs requested = limited."""
    requests: dict[str, Any] = {"cpu": row.cpu, "memory": memory or row.memory}
    # an OOM retry's larger memory is both request and limit
    limits: dict[str, Any] = {"memory": memory or row.memory_limit or row.memory}
    if row.cpu_limit:
        limits["cpu"] = row.cpu_limit
    if row.gpus:
        requests[GPU] = str(row.gpus)
        limits[GPU] = str(row.gpus)
    return {"requests": requests, "limits": limits}


def pod_security_context(table: Table) -> dict:
    uid = table.run_as_user
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security_context() -> dict:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def volumes(table: Table, row: StageRow) -> list[dict]:
    out = [{"name": "data", "persistentVolumeClaim": {"claimName": table.data_volume.claim}}]
    out += [{"name": s.name, "emptyDir": {"sizeLimit": s.size}} for s in table.scratch]
    if row.shm:
        out.append({"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": row.shm}})
    return out


def volume_mounts(table: Table, row: StageRow) -> list[dict]:
    out = [{"name": "data", "mountPath": table.data_volume.mount}]
    out += [{"name": s.name, "mountPath": s.mount} for s in table.scratch]
    if row.shm:
        out.append({"name": "dshm", "mountPath": "/dev/shm"})
    return out


def env_list(table: Table, plain: Mapping[str, str]) -> list[dict]:
    """Plain settings by value, per-environment ones from the overlay's ConfigMap, credentials
    only as references to their Secret."""
    env = [{"name": k, "value": v} for k, v in {**table.env, **plain}.items()]
    env += [{"name": name, "valueFrom": {"configMapKeyRef": {"name": ref.config_map, "key": ref.key}}}
            for name, ref in table.settings.items()]
    env += [{"name": name, "valueFrom": {"secretKeyRef": {"name": ref.secret, "key": ref.key}}}
            for name, ref in table.secrets.items()]
    return env


def placement(table: Table, row: StageRow) -> dict:
    pool = table.pools[row.pool]
    spec: dict[str, Any] = {"nodeSelector": dict(pool.node_selector)}
    if pool.tolerations:
        spec["tolerations"] = [t.model_dump(exclude_none=True) for t in pool.tolerations]
    return spec


def labels(stage: Stage, row: StageRow) -> dict[str, str]:
    return {"app.kubernetes.io/name": "lyra", "app.kubernetes.io/component": "stage",
            STAGE_LABEL: k8s_name(stage.name), "lyra.dev/pool": row.pool}


# --------------------------------------------------------------------------------------- pods
def pod_meta(stage: Stage, table: Table | None = None) -> dict:
    table = table or default_table()
    return {"labels": labels(stage, table.row(stage))}


def base_pod_spec(stage: Stage, profile: str, *, table: Table | None = None, memory: str | None = None) -> dict:
    """The pod spec around the stage's command (what PipesK8sClient.run gets as base_pod_spec)."""
    table = table or default_table()
    row = table.row(stage)
    container = {
        "name": "stage",
        "workingDir": table.working_dir,
        "env": env_list(table, stage_process_env(profile)),
        "resources": resources(row, memory),
        "securityContext": container_security_context(),
        "volumeMounts": volume_mounts(table, row),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    return {
        **placement(table, row),
        "restartPolicy": "Never",                 # the launcher decides about retries (OOM -> more memory)
        "serviceAccountName": table.service_account,
        "automountServiceAccountToken": False,    # stage code never talks to the API server
        "priorityClassName": table.pools[row.pool].priority_class,
        "securityContext": pod_security_context(table),
        "containers": [container],
        "volumes": volumes(table, row),
    }


def stage_pod(stage: Stage, profile: str, *, table: Table | None = None, name: str | None = None,
              pipes_env: Mapping[str, str] | None = None, memory: str | None = None,
              overrides: Sequence[str] = ()) -> kubernetes.client.V1Pod:
    """The stage's Pod as dagster-k8s builds it for PipesK8sClient.run."""
    table = table or default_table()
    return build_pod_body(
        pod_name=name or f"lyra-{k8s_name(stage.name)}",
        image=table.image_for(),
        command=stage_command(stage, overrides),
        env_vars=dict(pipes_env or {}),
        base_pod_meta=pod_meta(stage, table),
        base_pod_spec=base_pod_spec(stage, profile, table=table, memory=memory),
    )


def manifest(obj: Any, kind: str | None = None, api_version: str = "v1") -> dict:
    """A serialisable manifest of a kubernetes-client or Trainer model (with apiVersion/kind)."""
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "to_dict") and obj.__class__.__module__.startswith("kubeflow_trainer_api"):
        return obj.to_dict()
    doc = kubernetes.client.ApiClient().sanitize_for_serialization(obj)
    return {"apiVersion": doc.pop("apiVersion", None) or api_version,
            "kind": doc.pop("kind", None) or kind or type(obj).__name__.removeprefix("V1"), **doc}


# ---------------------------------------------------------------------------------- TrainJob
def stage_command(stage: Stage, overrides: Sequence[str] = ()) -> list[str]:
    return [*stage.command, *[a for o in overrides for a in ("--set", o)]]


def train_job_command(stage: Stage, overrides: Sequence[str] = ()) -> list[str]:
    """torchrun reads the PET_* variables the torch runtime injects (nodes, rank, master) and
    starts numProcPerNode workers; `lyra` sees it is inside a launch and does not relaunch."""
    return ["torchrun", "--no-python", *stage_command(stage, overrides)]


def train_job(stage: Stage, profile: str, *, name: str, table: Table | None = None,
              extra_env: Mapping[str, str] | None = None, overrides: Sequence[str] = (),
              memory: str | None = None) -> trainer.TrainerV1alpha1TrainJob:
    """Lyra pretraining as one TrainJob on the platform's torch-distributed runtime."""
    table = table or default_table()
    row = table.row(stage)
    if row.train_job is None:
        raise ValueError(f"{stage.name}: infra/stages.yaml gives it no train_job (nodes, runtime)")
    env = env_list(table, {**stage_process_env(profile), **(extra_env or {})})
    pod_patch = {
        **placement(table, row),
        "serviceAccountName": table.service_account,
        "securityContext": pod_security_context(table),
        "volumes": volumes(table, row),
        "containers": [{"name": TRAINER_CONTAINER, "securityContext": container_security_context(),
                        "volumeMounts": volume_mounts(table, row)}],
    }
    doc = {
        "apiVersion": TRAINER_API,
        "kind": "TrainJob",
        "metadata": {"name": name, "labels": labels(stage, row)},
        "spec": {
            "runtimeRef": {"name": row.train_job.runtime, "apiGroup": "trainer.kubeflow.org",
                           "kind": "ClusterTrainingRuntime"},
            "trainer": {
                "image": table.image_for(),
                "command": train_job_command(stage, overrides),
                "env": env,
                "numNodes": row.train_job.num_nodes,
                "numProcPerNode": stage_nproc(stage, profile, overrides),
                "resourcesPerNode": resources(row, memory),
            },
            "runtimePatches": [{
                "manager": LAUNCHER_MANAGER,
                "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [{
                    "name": TRAINER_CONTAINER,
                    "template": {"spec": {"template": {"metadata": {"labels": labels(stage, row)},
                                                       "spec": pod_patch}}},
                }]}}},
            }],
        },
    }
    job = trainer.TrainerV1alpha1TrainJob.from_dict(doc)
    # from_dict drops keys it does not know: a round trip that loses anything is a bug here
    if job.to_dict() != doc:
        raise ValueError(f"{stage.name}: the TrainJob does not survive the typed model's round trip")
    return job


def workload(stage: Stage, profile: str, *, table: Table | None = None) -> dict:
    """The stage's manifest as the `cluster` deployment would submit it (for render and tests)."""
    table = table or default_table()
    if table.row(stage).train_job is not None:
        return manifest(train_job(stage, profile, name=f"lyra-{k8s_name(stage.name)}", table=table))
    return manifest(stage_pod(stage, profile, table=table), kind="Pod")
