"""Resumable training checkpoints, written atomically into the run's resume folder (components/common/resume.py).

    <work_dir>/                      default `.<out>.checkpoints/` beside the output
        run.json                     fingerprint of the run these checkpoints belong to
        step_000250.pt               model + discriminator + optimizers + schedulers + step +
                                     per-rank RNG states (python, numpy, torch, cuda) + loss history

The data sampler needs no state of its own: the batch of step s is a function of (seed, s, rank)
(see data.py), so restoring the step restores the sampler position.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from components.common.atomic import atomic_path
from components.common import resume
from components.common.resume import ResumeFolder, fingerprint

CHECKPOINT_RE = re.compile(r"step_(\d+)\.pt$")

# settings that do not change the training trajectory: a run may be resumed with other values
# (notably `steps`, so a finished run can be extended)
TRAJECTORY_NEUTRAL = {"steps", "log_every", "checkpoint_every", "keep_checkpoints", "valid_every", "valid_clips",
                      "num_workers", "n_examples"}


def config_digest(config) -> str:
    """What checkpoints must match to be resumed: the trajectory-relevant config and the stage's code
    version (a run resumed after a code change would continue the old code's weights)."""
    values = {k: v for k, v in config.model_dump(mode="json").items() if k not in TRAJECTORY_NEUTRAL}
    return fingerprint(json.dumps(values, sort_keys=True), "omnicodec")


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.random.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.random.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def checkpoint_path(work_dir: Path, step: int) -> Path:
    return Path(work_dir) / f"step_{step:06d}.pt"


def list_checkpoints(work_dir: Path) -> list[tuple[int, Path]]:
    folder = Path(work_dir)
    found = []
    for path in folder.glob("step_*.pt") if folder.is_dir() else []:
        match = CHECKPOINT_RE.search(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def save_checkpoint(work_dir: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write step_<step>.pt atomically, then drop all but the newest `keep` checkpoints."""
    path = checkpoint_path(work_dir, step)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    for _, old in list_checkpoints(work_dir)[:-max(1, keep)]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path, map_location="cpu") -> dict[str, Any]:
    # our own file (numpy RNG tuples: not a weights-only pickle); a damaged one is an error naming it
    return resume.load_checkpoint(path, map_location=map_location)


def prepare_work_dir(work_dir: Path, digest: str, log) -> Path | None:
    """The newest checkpoint to resume from, or None. Checkpoints of a different config or code are set aside."""
    ResumeFolder(work_dir, digest, log)
    found = list_checkpoints(work_dir)
    return found[-1][1] if found else None
