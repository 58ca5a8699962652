"""Launchers start a stage's command in its own process and stream its reports back via Pipes.

The command and its config are identical whatever the launcher; only where the process runs
differs: `LocalLauncher` runs a subprocess on this machine (training stages spread themselves
over processes with torchrun, see components/common/distributed.py); a Kubernetes launcher
runs the same command in a pod on the stage's node pool.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Mapping

import dagster as dg

from components.pipeline import Stage

REPO_ROOT = Path(__file__).resolve().parents[1]


def stage_process_env(profile: str) -> dict[str, str]:
    """What every launcher sets for a stage process, wherever it runs."""
    # PYTHONFAULTHANDLER: a stage killed by a signal (a segfault in a native library) prints
    # every thread's Python stack on stderr instead of dying silently
    return {"LYRA_PROFILE": profile, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}


class StageLauncher(dg.ConfigurableResource):
    """Interface: run `stage.command` for `context` and return the Pipes invocation."""

    profile: str = "tiny"
    # a stage process killed by a signal (segfault, OOM killer, pre-empted node) is started again
    # this many times; stages write atomically and training resumes from its checkpoint, so a
    # retry continues rather than repeats. A stage that exits with an error is never retried.
    signal_retries: int = 1

    def stage_env(self, stage: Stage) -> dict[str, str]:
        return stage_process_env(self.profile)

    def launch(self, context: dg.AssetExecutionContext, stage: Stage, extras: Mapping[str, Any]) -> dg.PipesClientCompletedInvocation:
        raise NotImplementedError  # each concrete launcher implements this


class LocalLauncher(StageLauncher):
    """A subprocess in the repository root, with this interpreter's environment."""

    cwd: str = str(REPO_ROOT)

    def launch(self, context, stage, extras):
        env = dict(self.stage_env(stage))
        # the `lyra` script of the environment Dagster runs in, even when PATH does not have it
        bin_dir = str(Path(sys.executable).parent)
        env["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
        client = dg.PipesSubprocessClient(cwd=self.cwd, env=env)
        context.log.info(f"launching locally: {' '.join(stage.command)}")
        return client.run(context=context, command=stage.command, extras=dict(extras))
