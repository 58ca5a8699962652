"""Resources per deployment, chosen in one place by LYRA_DEPLOYMENT (default: local).

    local  stage commands as subprocesses here (torchrun for multi-process training)
    k8s    stage commands as pods on their node pool, Lyra pretraining as a Kubeflow TrainJob
           (orchestration/k8s/launcher.py; placement and sizes from infra/stages.yaml)
"""

from __future__ import annotations

import os

import dagster as dg

from orchestration.dvc import DvcResource
from orchestration.launchers import LocalLauncher
from orchestration.registry import registry_resource


# the DVC remote each profile's artifacts are pushed to as soon as a stage commits (.dvc/config)
PROFILE_DVC_REMOTE = {"tiny": "", "gpu": "", "cluster": "s3"}


def resources_for(deployment: str, profile: str) -> dict:
    # on Kubernetes every run worker is a fresh pod: the lock lives on the data volume with the outputs
    dvc = DvcResource(remote=PROFILE_DVC_REMOTE.get(profile, ""), profile=profile,
                      lock_copy="data/dvc.lock" if deployment == "k8s" else "")
    registry = registry_resource(profile)
    if deployment == "local":
        return {"launcher": LocalLauncher(profile=profile), "dvc": dvc, "registry": registry}
    if deployment == "k8s":
        from orchestration.k8s.launcher import K8sLauncher  # kubernetes clients only where they are used

        return {"launcher": K8sLauncher(profile=profile, namespace=os.environ.get("LYRA_STAGE_NAMESPACE")),
                "dvc": dvc, "registry": registry}
    raise ValueError(f"unknown LYRA_DEPLOYMENT {deployment!r}; expected 'local' or 'k8s'")


@dg.definitions
def resources() -> dg.Definitions:
    deployment = os.environ.get("LYRA_DEPLOYMENT", "local")
    profile = os.environ.get("LYRA_PROFILE", "tiny")
    return dg.Definitions(resources=resources_for(deployment, profile))
