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
    # the URL the reports folder (<store>/reports) is served under: a bucket's static site, or empty for
    # `lyra serve`'s /reports on params.yaml's serve host and port (`lyra ui` starts it beside Dagster)
    report_base_url: str = ""

    def open(self):
        from components.registry.registry import Registry

        return Registry(Path(self.repo), profile=self.profile)

    def report_url(self, report: str) -> str:
        """An http(s) link to a version's report: a page of the Dagster UI cannot open file:// links."""
        from components.config import load_stage_config
        from components.serving.config import ServeConfig

        serve = load_stage_config("serve", ServeConfig, params_path=Path(self.repo) / "params.yaml", profile=self.profile)
        path = Path(report)
        inside = path.relative_to(serve.reports) if path.is_relative_to(serve.reports) else path
        base = self.report_base_url or f"http://{serve.host}:{serve.port}/reports"
        return base.rstrip("/") + "/" + inside.as_posix()


def registry_resource(profile: str) -> RegistryResource:
    return RegistryResource(profile=profile, report_base_url=os.environ.get("LYRA_REPORT_BASE_URL", ""))
