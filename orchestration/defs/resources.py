"""Resources per deployment, chosen in one place by LYRA_DEPLOYMENT (default: local)."""

from __future__ import annotations

import os

import dagster as dg

from orchestration.dvc import DvcResource
from orchestration.launchers import LocalLauncher


def resources_for(deployment: str, profile: str) -> dict:
    if deployment == "local":
        return {"launcher": LocalLauncher(profile=profile), "dvc": DvcResource()}
    raise ValueError(f"unknown LYRA_DEPLOYMENT {deployment!r}; expected 'local'")


@dg.definitions
def resources() -> dg.Definitions:
    deployment = os.environ.get("LYRA_DEPLOYMENT", "local")
    profile = os.environ.get("LYRA_PROFILE", "tiny")
    return dg.Definitions(resources=resources_for(deployment, profile))
