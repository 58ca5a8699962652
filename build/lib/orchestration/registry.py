"""The model registry as a Dagster resource: where the registry's git repository and store are.

Everything it records lives in git (GTO tags, registry/ entries and audit log) and in the store
folder, never in the Dagster instance: a fresh instance, or `lyra promote` at a shell, sees the
same versions, stage holders and decisions.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from orchestration.launchers import REPO_ROOT


class RegistryResource(dg.ConfigurableResource):
    repo: str = str(REPO_ROOT)
    profile: str | None = None
    # where reports are served from (e.g. a bucket's static site); empty: file:// links to the store
    report_base_url: str = ""

    def open(self):
        from components.registry.registry import Registry

        return Registry(Path(self.repo), profile=self.profile)

    def report_url(self, report: str) -> str:
        if self.report_base_url:
            return self.report_base_url.rstrip("/") + "/" + report
        return (Path(self.repo) / report).resolve().as_uri()


def registry_resource(profile: str) -> RegistryResource:
    return RegistryResource(profile=profile, report_base_url=os.environ.get("LYRA_REPORT_BASE_URL", ""))
