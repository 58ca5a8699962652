"""One `dvc status` answers every step of a run while dvc.lock stays as it was; a commit makes the next step ask again."""

import subprocess
import sys
from pathlib import Path

from orchestration.dvc import DvcResource

BIN = Path(sys.executable).parent


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=repo, check=True)
    (repo / "dvc.yaml").write_text("stages:\n"
                                   "  clips:\n    cmd: echo\n    outs: [data/clips]\n"
                                   "  tags:\n    cmd: echo\n    deps: [data/clips]\n    outs: [data/tags]\n")
    for name in ("clips", "tags"):
        (repo / "data" / name).mkdir()
        (repo / "data" / name / "a.txt").write_text(f"{name}\n")
    return repo


class CountingDvc(DvcResource):
    def _run(self, *args: str) -> str:
        self.__dict__.setdefault("_calls", []).append(args)
        return super()._run(*args)


def test_a_run_asks_dvc_once_until_a_stage_commits(tmp_path):
    repo = _repo(tmp_path)
    dvc = CountingDvc(repo=str(repo))
    assert not dvc.is_up_to_date("clips", run_id="run-1")
    assert not dvc.is_up_to_date("tags", run_id="run-1")
    assert len(dvc._calls) == 1                                   # one status for both steps

    dvc.commit("clips")                                           # clips ran: dvc.lock changed
    assert dvc.is_up_to_date("clips", run_id="run-1")
    assert not dvc.is_up_to_date("tags", run_id="run-1")          # asked again, still stale
    dvc.commit("tags")
    assert dvc.is_up_to_date("tags", run_id="run-1")

    (repo / "data" / "clips" / "a.txt").write_text("changed between runs\n")
    assert not dvc.is_up_to_date("clips", run_id="run-2")         # a new run never reuses the last run's answer
    assert not dvc.is_up_to_date("tags", run_id="run-2")          # and sees the downstream stage stale too
    assert dvc.is_up_to_date("clips") is False                    # without a run: the stage's own status, as before
