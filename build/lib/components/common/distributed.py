"""One entrypoint for 1 process, N CPU processes (gloo) or N GPUs (nccl).

A training command calls `relaunch_under_torchrun(nproc)` first: when more than one process is
asked for and we are not already inside a distributed launch, it re-runs the very same command
under `torchrun --standalone` and returns its exit code. The Dagster launcher, `dvc repro` and a
user at the shell therefore all start training the same way; on Kubernetes the pod sets the
torchrun rendezvous variables itself and the relaunch is skipped.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from typing import Sequence

import torch
import torch.distributed as dist


@dataclasses.dataclass(frozen=True)
class DistInfo:
    rank: int
    local_rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def dist_info() -> DistInfo:
    return DistInfo(
        rank=int(os.environ.get("RANK", 0)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
    )


def inside_distributed_launch() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def relaunch_under_torchrun(nproc: int, argv: Sequence[str] | None = None) -> int | None:
    """Re-run `lyra <argv>` under torchrun with `nproc` processes; None when no relaunch is needed."""
    if nproc <= 1 or inside_distributed_launch():
        return None
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "components.cli", *argv]
    env = dict(os.environ)
    # each worker gets its share of the cores instead of all of them (oversubscription is slow)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return subprocess.call(cmd, env=env)


def default_backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


def init_distributed(use_deepspeed: bool = False) -> DistInfo:
    """Initialise the process group when launched with WORLD_SIZE > 1; a no-op for one process."""
    info = dist_info()
    if info.is_distributed and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(info.local_rank)
        if use_deepspeed:
            import deepspeed

            deepspeed.init_distributed(dist_backend=default_backend())
        else:
            dist.init_process_group(backend=default_backend())
    return info


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(value: float) -> float:
    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
