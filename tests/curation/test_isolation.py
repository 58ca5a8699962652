"""A failure in one file (an exception, or a worker process dying) never affects another file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import soundfile as sf

from components.curation import process
from components.curation.config import CurationConfig
from components.curation.discover import discover
from components.curation.runner import run_isolated

from .conftest import synth_music


def square_or_die(x: int) -> int:
    if x == 3:
        os._exit(7)  # what a segfaulting decoder looks like from the pool's side
    return x * x


def test_a_dying_worker_only_loses_its_own_item():
    items = list(range(8))
    results = dict(run_isolated(square_or_die, items, workers=2, on_crash=lambda item, detail: ("crashed", item)))
    assert sorted(results) == items  # every item answered exactly once
    assert results[3] == ("crashed", 3)
    assert all(results[i] == i * i for i in items if i != 3)


def test_an_exception_becomes_a_quarantine_row_and_leaves_no_clip(tmp_path: Path, monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    sf.write(src / "fine.wav", synth_music(25.0, seed=1), 24_000)
    sf.write(src / "boom.wav", synth_music(25.0, seed=2), 24_000)
    clips = tmp_path / "clips"
    clips.mkdir()
    real_write = process.write_clip
    failure = {"error": ValueError("the encoder gave up")}

    def flaky_write(path, audio, sr):  # fails after boom.wav's first clip
        if "boom" in Path(path).name and not Path(path).name.endswith("000.wav"):
            raise failure["error"]
        return real_write(path, audio, sr)

    monkeypatch.setattr(process, "write_clip", flaky_write)
    inputs, _ = discover(src)
    outcomes = {i.rel: process.process_file(i, clips, CurationConfig()) for i in inputs}
    assert outcomes["boom.wav"].clips == []
    (row,) = outcomes["boom.wav"].quarantined
    assert row["reason"] == "error" and "the encoder gave up" in row["detail"]
    assert len(outcomes["fine.wav"].clips) == 3
    assert sorted(p.name.split("-")[0] for p in clips.iterdir()) == ["fine"] * 3  # boom's first clip removed again

    # a full disk is the run's problem, not the file's: it stops the run (a good file is never quarantined for it)
    failure["error"] = OSError(28, "No space left on device")
    boom = next(i for i in inputs if i.rel == "boom.wav")
    with pytest.raises(OSError, match="No space left"):
        process.process_file(boom, clips, CurationConfig())
    assert sorted(p.name.split("-")[0] for p in clips.iterdir()) == ["fine"] * 3
