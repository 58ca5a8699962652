"""A stage process killed by a signal is started once more; one that fails with an error is not."""

import sys
import textwrap
from pathlib import Path

import dagster as dg

from components.pipeline import Stage
from orchestration.dvc import DvcResource
from orchestration.launchers import LocalLauncher, run_with_pipes
from orchestration.stage_assets import stage_asset

# first start: dies of SIGSEGV (or exits 3); later starts write the output and report through Pipes
SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from dagster_pipes import open_dagster_pipes
    attempts, out, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    n = int(attempts.read_text()) + 1 if attempts.exists() else 1
    attempts.write_text(str(n))
    with open_dagster_pipes() as pipes:
        if n == 1 and mode == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        if mode == "error":
            sys.exit(3)
        out.mkdir()
        pipes.report_asset_materialization(metadata={"attempt": n, "faulthandler": os.environ.get("PYTHONFAULTHANDLER", "")})
""")


class ScriptLauncher(LocalLauncher):
    """LocalLauncher's environment and Pipes client, with a test script instead of `lyra ...`."""

    argv: list[str]

    def launch(self, context, stage, extras):
        return run_with_pipes(context, [sys.executable, *self.argv], self.stage_env(stage), self.cwd, stage.name, extras)


def run_stage(tmp_path: Path, mode: str) -> tuple[dg.ExecuteInProcessResult, int]:
    script, attempts, out = tmp_path / "stage.py", tmp_path / "attempts", tmp_path / "out"
    script.write_text(SCRIPT)
    stage = Stage(name="flaky", group="test", description="test stage", argv=(), deps=(), outs=(str(out),),
                  params="corpus")
    launcher = ScriptLauncher(argv=[str(script), str(attempts), str(out), mode])
    result = dg.materialize([stage_asset(stage)], resources={"launcher": launcher, "dvc": DvcResource(enabled=False)},
                            raise_on_error=False)
    return result, int(attempts.read_text())


def test_a_stage_killed_by_a_signal_is_started_again(tmp_path):
    result, attempts = run_stage(tmp_path, "segfault")
    assert result.success
    assert attempts == 2
    [mat] = result.asset_materializations_for_node("flaky")
    assert mat.metadata["attempt"].value == 2
    assert mat.metadata["faulthandler"].value == "1"


def test_a_stage_that_fails_with_an_error_is_not_retried(tmp_path):
    result, attempts = run_stage(tmp_path, "error")
    assert not result.success
    assert attempts == 1
