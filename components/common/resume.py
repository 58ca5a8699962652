"""Resuming a killed training, one way for every trainer: a folder beside the output, valid for one
fingerprint of what the run depends on.

    <parent>/.<out>.checkpoints/          the trainer's resumable state (its own format: one state.pt,
        run.json {"fingerprint"}          DeepSpeed tags, TRL checkpoint-N folders, step_N.pt files)
        stale-<fingerprint>/              what a run with other config, code or inputs left: set aside,
                                          never resumed (only the newest such set is kept)

A rerun of the same command finds the same fingerprint and resumes; anything else starts afresh. The
output folder itself is swapped in atomically at the end (components/common/atomic.py), after which
the trainer removes this folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any, Iterable

from components.common.atomic import atomic_path, atomic_write_json
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


class ResumeFolder:
    """The checkpoint folder of one run. Opening it with a different fingerprint sets the old content aside.

    Distributed trainers open it on the main process only and wait at a barrier before reading it."""

    def __init__(self, root: str | Path, fingerprint: str, log: logging.Logger | None = None):
        self.root, self.fingerprint = Path(root), fingerprint
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
        import torch

        # our own file, holding optimizer and RNG state: not a weights-only pickle
        return torch.load(self.state_path, map_location="cpu", weights_only=False) if self.state_path.is_file() else None

    def save(self, state: dict) -> None:
        import torch

        with atomic_path(self.state_path, suffix=".pt") as tmp:
            torch.save(state, tmp)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
