"""Sweep runs: each a real `lyra lm train`, in a folder named by a hash of what defines it.

    <runs>/<key>/params.yaml     the run's full `lm` config (the command reads it with --params)
               /model/           the trained model (lm train's atomic output folder)
               /.model.checkpoints/  lm train's resumable checkpoints while it runs
               /metrics.json     lm train's metrics: present = the run is done and is reused
               /train.log        its stdout + stderr

key = sha1(lm config, token data, Lyra + token code): an unchanged run is never trained twice,
a killed one resumes from its checkpoints (same key, same folder), and a change to any of the
three starts a new folder. Each run is started exactly as `lyra_pretrain` starts: the `lyra lm
train` command, which spreads itself over `nproc` processes under torchrun
(components/common/distributed.py); the sweep only decides how many run side by side.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import os
import queue
import subprocess
import sys
import time
from pathlib import Path

import yaml

from components.common.atomic import atomic_write_text
from components.common.lineage import stage_code_version
from components.lyra.config import LMConfig
from components.common.errors import LyraError

PIPES_PREFIX = "DAGSTER_PIPES_"         # the sweep's own Pipes channel; runs must not open it again


class RunFailed(LyraError, RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class RunSpec:
    name: str                  # e.g. "d64-L2-s120", readable in logs and tables
    role: str                  # sweep | holdout | codebooks
    lm: LMConfig
    tokens: Path
    num_codebooks: int

    @property
    def cost(self) -> float:
        """Relative training cost, to start the longest runs first."""
        return self.lm.steps * self.lm.model.dim * (self.lm.model.dim * self.lm.model.n_layers + 4 * 1025)


def run_key(spec: RunSpec) -> str:
    h = hashlib.sha1(spec.lm.model_dump_json().encode())
    for name in ("meta.json", "index.parquet"):
        h.update((spec.tokens / name).read_bytes())
    h.update(stage_code_version("lyra_pretrain").encode())      # the code `lyra lm train` runs
    return h.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class RunResult:
    spec: RunSpec
    key: str
    folder: Path
    metrics: dict
    reused: bool
    cost: dict                 # wall_seconds and cpu_seconds of the training (when it was trained)


def done(folder: Path) -> bool:
    return (folder / "metrics.json").is_file() and (folder / "model" / "training.json").is_file()


def lm_train_command(spec: RunSpec, folder: Path) -> list[str]:
    return [sys.executable, "-m", "components.cli", "lm", "train", "--tokens", str(spec.tokens),
            "--out", str(folder / "model"), "--metrics", str(folder / "metrics.json"),
            "--params", str(folder / "params.yaml"), "--profile", "tiny"]


def run_env(threads: int | None, devices: list[int] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PIPES_PREFIX)}
    env.pop("WORLD_SIZE", None)        # never inherit a rendezvous: each run is its own launch
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    if devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, devices))
    return env


def gpu_slots(parallel: int, nproc: int) -> list[list[int] | None]:
    """Disjoint GPUs for each of `parallel` runs at once; None everywhere on a CPU machine."""
    try:
        import torch

        count = torch.cuda.device_count()
    except Exception:
        count = 0
    if count == 0:
        return [None] * parallel
    if count < parallel * nproc:
        raise RunFailed(f"{parallel} parallel runs x {nproc} processes need {parallel * nproc} GPUs; {count} visible")
    return [list(range(s * nproc, (s + 1) * nproc)) for s in range(parallel)]


def train_run(spec: RunSpec, root: Path, threads: int | None, devices: list[int] | None,
              log: logging.Logger) -> RunResult:
    key = run_key(spec)
    folder = root / key
    if done(folder):
        cost = json.loads((folder / "cost.json").read_text()) if (folder / "cost.json").is_file() else {}
        return RunResult(spec, key, folder, json.loads((folder / "metrics.json").read_text()), True, cost)
    folder.mkdir(parents=True, exist_ok=True)
    # `tiny` is the base every profile merges onto: the full config under it is the config, whatever the profile
    atomic_write_text(folder / "params.yaml", yaml.safe_dump(
        {"profile": "tiny", "tiny": {"lm": spec.lm.model_dump(mode="json")}}, sort_keys=False))
    atomic_write_text(folder / "run.json", json.dumps({"name": spec.name, "role": spec.role,
                                                        "num_codebooks": spec.num_codebooks}))
    started = time.monotonic()
    log.info("run %s (%s): training, %d steps -> %s", spec.name, spec.role, spec.lm.steps, folder.name)
    with open(folder / "train.log", "ab") as out:
        proc = subprocess.Popen(lm_train_command(spec, folder), stdout=out, stderr=subprocess.STDOUT,
                                env=run_env(threads, devices))
        # wait4: the run's own CPU time (torchrun's workers included), what it costs on idle cores
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = code = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    if code != 0 or not done(folder):
        tail = (folder / "train.log").read_text(errors="replace")[-2000:]
        raise RunFailed(f"run {spec.name} ({folder}) failed with exit code {code}:\n{tail}")
    cost = {"wall_seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime}
    atomic_write_text(folder / "cost.json", json.dumps(cost))
    metrics = json.loads((folder / "metrics.json").read_text())
    log.info("run %s: valid loss %.3f in %.0f s (%.0f CPU s)", spec.name, metrics["val_loss"], seconds,
             cost["cpu_seconds"])
    return RunResult(spec, key, folder, metrics, False, cost)


def train_runs(specs: list[RunSpec], root: Path, parallel: int, threads: int | None,
               log: logging.Logger) -> list[RunResult]:
    """Every run, `parallel` at a time, longest first; results in the order of `specs`."""
    slots: queue.Queue = queue.Queue()
    nproc = max(s.lm.nproc for s in specs)
    for slot in gpu_slots(parallel, nproc):
        slots.put(slot)

    def one(spec: RunSpec) -> RunResult:
        devices = slots.get()
        try:
            return train_run(spec, root, threads, devices, log)
        finally:
            slots.put(devices)

    order = sorted(range(len(specs)), key=lambda i: -specs[i].cost)
    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = {i: pool.submit(one, specs[i]) for i in order}
        return [futures[i].result() for i in range(len(specs))]
