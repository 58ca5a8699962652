"""Resumable training checkpoints, written atomically into a stable work folder.

    <work_dir>/
        run.json                     config digest of the run these checkpoints belong to
        checkpoints/step_000250.pt   model + discriminator + optimizers + schedulers + step +
                                     per-rank RNG states (python, numpy, torch, cuda) + loss history

The data sampler needs no state of its own: the batch of step s is a function of (seed, s, rank)
(see data.py), so restoring the step restores the sampler position.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from components.common.atomic import atomic_path, atomic_write_json

CHECKPOINT_RE = re.compile(r"step_(\d+)\.pt$")

# settings that do not change the training trajectory: a run may be resumed with other values
# (notably `steps`, so a finished run can be extended)
TRAJECTORY_NEUTRAL = {"steps", "log_every", "checkpoint_every", "keep_checkpoints", "valid_every", "valid_clips",
                      "num_workers", "n_examples"}


def config_digest(config, code: str = "") -> str:
    """What checkpoints must match to be resumed: the trajectory-relevant config and the code
    version (a run resumed after a code change would continue the old code's weights)."""
    values = {k: v for k, v in config.model_dump(mode="json").items() if k not in TRAJECTORY_NEUTRAL}
    return hashlib.sha256(json.dumps({"config": values, "code": code}, sort_keys=True).encode()).hexdigest()[:16]


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
    return Path(work_dir) / "checkpoints" / f"step_{step:06d}.pt"


def list_checkpoints(work_dir: Path) -> list[tuple[int, Path]]:
    folder = Path(work_dir) / "checkpoints"
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
    # our own file; it holds numpy RNG tuples, so it is not a weights-only pickle
    return torch.load(path, map_location=map_location, weights_only=False)


def prepare_work_dir(work_dir: Path, digest: str, log) -> Path | None:
    """The newest checkpoint to resume from, or None. Checkpoints of a different config or code are set aside."""
    work_dir = Path(work_dir)
    run_file = work_dir / "run.json"
    if run_file.is_file():
        previous = json.loads(run_file.read_text()).get("config_digest")
        if previous != digest and list_checkpoints(work_dir):
            stale = work_dir / f"stale-{previous}"
            (work_dir / "checkpoints").rename(stale)
            log.warning("config or code changed since the checkpoints in %s were written; moved them to %s and "
                        "starting from scratch", work_dir, stale.name)
    work_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_file, {"config_digest": digest})
    found = list_checkpoints(work_dir)
    return found[-1][1] if found else None
