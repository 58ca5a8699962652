"""Launchers start a stage's command in its own process and stream its reports back via Pipes.

The command and its config are identical whatever the launcher; only where the process runs
differs: `LocalLauncher` runs a subprocess on this machine (training stages spread themselves
over processes with torchrun, see components/common/distributed.py); a Kubernetes launcher
runs the same command in a pod on the stage's node pool.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

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


class StageProcessFailed(Exception):
    """The stage's process ended with a non-zero exit code (negative: killed by that signal, Popen's convention)."""

    def __init__(self, stage: str, returncode: int):
        self.stage, self.returncode = stage, returncode
        how = f"was killed by signal {-returncode}" if returncode < 0 else f"exited with code {returncode}"
        super().__init__(f"{stage}: the stage process {how}")

    @property
    def killed_by_signal(self) -> bool:
        return self.returncode < 0


def run_with_pipes(context, command: Sequence[str], env: Mapping[str, str], cwd: str, stage: str,
                   extras: Mapping[str, Any]) -> dg.PipesClientCompletedInvocation:
    """Start `command` with a Pipes session open (its reports stream into the run) and wait for it.

    What dg.PipesSubprocessClient does, through public APIs, keeping the exit code: the caller tells
    a process killed by a signal (retried) from one that failed (not retried) without parsing text."""
    with dg.open_pipes_session(context=context, context_injector=dg.PipesEnvContextInjector(),
                               message_reader=dg.PipesTempFileMessageReader(), extras=dict(extras)) as session:
        process = subprocess.Popen(list(command), cwd=cwd,
                                   env={**os.environ, **env, **session.get_bootstrap_env_vars()})
        try:
            returncode = process.wait()
        except BaseException:             # the run was interrupted: do not leave the stage running
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
            raise
        if returncode != 0:
            raise StageProcessFailed(stage, returncode)
    return dg.PipesClientCompletedInvocation(session)


class LocalLauncher(StageLauncher):
    """A subprocess in the repository root, with this interpreter's environment."""

    cwd: str = str(REPO_ROOT)

    def launch(self, context, stage, extras):
        env = dict(self.stage_env(stage))
        # the `lyra` script of the environment Dagster runs in, even when PATH does not have it
        bin_dir = str(Path(sys.executable).parent)
        env["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
        context.log.info(f"launching locally: {' '.join(stage.command)}")
        return run_with_pipes(context, stage.command, env, self.cwd, stage.name, extras)
