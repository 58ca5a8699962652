"""Resuming a killed training, one way for every trainer: a folder beside the output, valid for one
fingerprint of what the run depends on.

    <parent>/.<out>.checkpoints/          the trainer's resumable state (its own format: one state.pt,
        run.json {"fingerprint"}          DeepSpeed tags, TRL checkpoint-N folders, step_N.pt files)
        stale-<fingerprint>/              what a run with other config, code or inputs left: set aside,
                                          never resumed (only the newest such set is kept)

A rerun of the same command finds the same fingerprint and resumes; anything else starts afresh. The
output folder itself is swapped in atomically at the end (components/common/atomic.py), after which
the trainer removes this folder. While a run holds the folder (`.<out>.checkpoints.lock`, an OS lock
that dies with its process) a second run of the same output is refused with the first one's pid.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any, Iterable

from components.common.atomic import atomic_path, atomic_write_json
from components.common.errors import LyraError
from components.common.lineage import file_digest, stage_code_version

MARKER = "run.json"
STATE = "state.pt"
STALE_PREFIX = "stale-"


def checkpoint_folder(out: str | Path) -> Path:
    out = Path(out)
    return out.parent / f".{out.name}.checkpoints"


def fingerprint(config: Any, stage: str, files: Iterable[str | Path | None] = (), extra: Iterable[str] = ()) -> str:
    """What a checkpoint must match to be resumed: the config (a pydantic model or its JSON), the stage's code,
    the digests of the input files (None or a missing file counts as absent) and any `extra` facts."""
    text = config if isinstance(config, str) else config.model_dump_json()
    h = hashlib.sha1(text.encode())
    h.update((stage_code_version(stage) or "-").encode())
    for path in files:
        h.update(file_digest(path).encode() if path is not None and Path(path).is_file() else b"-")
    for fact in extra:
        h.update(str(fact).encode())
    return h.hexdigest()[:16]


class CheckpointError(LyraError, RuntimeError):
    """A checkpoint that cannot be read: damaged after it was written (writes are atomic, so not by a kill)."""


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """A torch.save'd training state, or CheckpointError naming the file and what to do; nothing resumes from
    a damaged file."""
    import torch

    path = Path(path)
    try:
        # our own file, holding optimizer and RNG state: not a weights-only pickle
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:     # noqa: BLE001 - truncation and bit rot surface as many different errors
        raise CheckpointError(f"{path}: the checkpoint cannot be read ({type(exc).__name__}: {str(exc)[:120]}); it was "
                              f"damaged after it was written. Remove {path.parent} to train this output afresh") from None


class ResumeFolder:
    """The checkpoint folder of one run. Opening it with a different fingerprint sets the old content aside.

    Distributed trainers open it on the main process only and wait at a barrier before reading it."""

    def __init__(self, root: str | Path, fingerprint: str, log: logging.Logger | None = None):
        from components.common.holder import acquire

        self.root, self.fingerprint = Path(root), fingerprint
        # one training per output at a time: a second (a CLI run beside a Dagster one) is refused, naming the first
        out = self.root.name.removeprefix(".").removesuffix(".checkpoints")
        acquire(self.root.with_name(self.root.name + ".lock"), f"the training of {self.root.parent / out}")
        previous = self._recorded()
        if previous != fingerprint and self._content():
            self._set_aside(previous or "unknown", log)
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.root / MARKER, {"fingerprint": fingerprint})

    def _recorded(self) -> str | None:
        marker = self.root / MARKER
        try:
            return json.loads(marker.read_text()).get("fingerprint") if marker.is_file() else None
        except (OSError, ValueError):
            return None

    def _content(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [p for p in self.root.iterdir() if p.name != MARKER and not p.name.startswith(STALE_PREFIX)]

    def _set_aside(self, previous: str, log: logging.Logger | None) -> None:
        for old in self.root.glob(f"{STALE_PREFIX}*"):
            shutil.rmtree(old, ignore_errors=True)
        stale = self.root / f"{STALE_PREFIX}{previous}"
        stale.mkdir()
        for path in self._content():
            path.rename(stale / path.name)
        if log is not None:
            log.warning("config, code or inputs changed since the checkpoints in %s were written; set them aside "
                        "in %s and starting from scratch", self.root, stale.name)

    # --- a trainer whose whole state is one torch.save'd dict
    @property
    def state_path(self) -> Path:
        return self.root / STATE

    def load(self) -> dict | None:
        return load_checkpoint(self.state_path) if self.state_path.is_file() else None

    def save(self, state: dict) -> None:
        import torch

        with atomic_path(self.state_path, suffix=".pt") as tmp:
            torch.save(state, tmp)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
