"""DVC as the shared record of what is up to date.

Before a stage runs, `dvc status` says whether its deps, params and outs are unchanged since
it was last committed; if so the Dagster materialization is a fast no-op. After a stage runs,
`dvc commit` records the new output hashes in dvc.lock and caches them, so Dagster and
`dvc repro` agree on the state of every artifact: either can run the pipeline next.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import yaml
from filelock import FileLock

from components.common.atomic import atomic_write_text
from components.common.errors import LyraError
from orchestration.integrity import verify_record

REPO_ROOT = Path(__file__).resolve().parents[1]


class DvcError(LyraError, RuntimeError):
    pass


class DvcResource(dg.ConfigurableResource):
    repo: str = str(REPO_ROOT)
    enabled: bool = True
    # a remote in .dvc/config that every committed stage is pushed to at once (the cluster's "s3");
    # empty: nothing is pushed until `dvc push` (the demo pushes to the local remote at its end)
    remote: str = ""
    # a copy of dvc.lock kept with the data (e.g. "data/dvc.lock" on the cluster's shared volume):
    # run workers are fresh pods whose dvc.lock is the image's, so the record of what was built
    # must live where the outputs do; it is restored before every status check
    lock_copy: str = ""
    # the profile the stages run with (LYRA_PROFILE). dvc.yaml tracks `${profile}.<section>` as
    # params.yaml names it, so the two must agree, or DVC would record one profile's params for
    # outputs made with another's. Empty: not checked.
    profile: str = ""

    def _check_profile(self) -> None:
        from components.config import BASE_PROFILE, load_params

        params_file = Path(self.repo) / "params.yaml"
        if not self.profile or not params_file.is_file():
            return
        recorded = load_params(params_file).get("profile") or BASE_PROFILE
        if recorded != self.profile:
            raise DvcError(f"{params_file.name} selects profile {recorded!r} but the stages run with {self.profile!r}: "
                           f"DVC would record {recorded!r}'s params for {self.profile!r}'s outputs. Set `profile: "
                           f"{self.profile}` in {params_file.name} (or `dvc exp run -S profile={self.profile}`).")

    def _dvc(self) -> str:
        local = Path(sys.executable).parent / "dvc"
        return str(local) if local.exists() else (shutil.which("dvc") or "dvc")

    def _run(self, *args: str) -> str:
        self._check_profile()
        # dvc holds a repository lock; parallel steps queue here instead of failing on it
        with FileLock(str(Path(self.repo) / ".dvc" / "tmp" / "lyra-orchestration.lock")):
            proc = subprocess.run([self._dvc(), *args], cwd=self.repo, capture_output=True, text=True)
        if proc.returncode != 0:
            raise DvcError(f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def _restore_lock(self) -> None:
        copy = Path(self.repo) / self.lock_copy if self.lock_copy else None
        if copy is not None and copy.is_file():
            shutil.copyfile(copy, Path(self.repo) / "dvc.lock")

    def _save_lock(self) -> None:
        if self.lock_copy:
            atomic_write_text(Path(self.repo) / self.lock_copy, (Path(self.repo) / "dvc.lock").read_text())

    def is_up_to_date(self, stage: str, run_id: str = "") -> bool:
        """True when the stage's deps, params and outs all match dvc.lock.

        With a `run_id`, one `dvc status` of every stage answers all the run's steps while dvc.lock
        stays as it was: a run where nothing changed asks DVC once instead of once per stage (the
        no-op rerun). A stage that runs commits, which changes dvc.lock, so the next step asks again."""
        if not self.enabled:
            return False
        if not run_id:
            self._restore_lock()
            verify_record(self.repo)
            return json.loads(self._run("status", "--json", stage) or "{}") == {}
        return stage not in self._run_status(run_id)

    def _run_status(self, run_id: str) -> dict:
        tmp = Path(self.repo) / ".dvc" / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        cache = tmp / "lyra-run-status.json"
        with FileLock(str(tmp / "lyra-run-status.lock")):
            self._restore_lock()
            lock = Path(self.repo) / "dvc.lock"
            key = f"{run_id}:{hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else ''}"
            saved = json.loads(cache.read_text()) if cache.is_file() else {}
            if saved.get("key") == key:
                return saved["status"]
            if not saved.get("key", "").startswith(f"{run_id}:"):
                verify_record(self.repo)          # once per run, before DVC is first asked (integrity.py)
            status = json.loads(self._run("status", "--json") or "{}")
            atomic_write_text(cache, json.dumps({"key": key, "status": status}))
            return status

    def stale_stages(self, verify: bool = True) -> dict:
        """{stage: what changed} for every stage DVC considers out of date. `verify=False`: the caller has just run
        integrity.verify_record itself (`lyra verify`), so the cache is not hashed twice."""
        if not self.enabled:
            return {}
        self._restore_lock()
        if verify:
            verify_record(self.repo)
        return json.loads(self._run("status", "--json") or "{}")

    def commit(self, stage: str) -> None:
        """Record the stage's current deps/params/outs in dvc.lock and cache its outputs; with a
        `remote`, push them there too, so other machines can `dvc pull` what the lock names."""
        if self.enabled:
            self._restore_lock()
            self._run("commit", "--force", "--quiet", stage)
            self._save_lock()
            if self.remote:
                self._run("push", "--quiet", "--remote", self.remote, stage)

    def out_hashes(self, stage: str) -> dict[str, str]:
        """{out path: md5} for the stage, as recorded in dvc.lock ({} when unknown)."""
        lock = Path(self.repo) / "dvc.lock"
        if not lock.is_file():
            return {}
        entry = (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).get(stage, {})
        return {o["path"]: o.get("md5", "") for o in entry.get("outs", [])}

    def push(self) -> str:
        return self._run("push", "--quiet") if self.enabled else ""
