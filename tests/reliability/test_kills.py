"""Kill anywhere (tests/reliability/kills.py): SIGKILL at random moments, then a rerun.

CI runs a bounded campaign; `make reliability` (LYRA_RELIABILITY=full) the full one.
    curation    3 files -> clips, manifest, lineage: every rerun's folder byte-identical to an uninterrupted run
    registry    registering a model (artifact copy, entry, audit line, git commit, GTO tags): the same
                version, artifact and tags as an uninterrupted registration
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.registry.conftest import project  # noqa: F401 - the throwaway project fixture
from tests.reliability.kills import Scenario, campaign

FULL = os.environ.get("LYRA_RELIABILITY") == "full"
KILLS = {"curation": 120 if FULL else 12, "registry": 80 if FULL else 8}
FIGURES = Path(os.environ.get("LYRA_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")) / "reliability"


def record(figures) -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    (FIGURES / f"kills_{figures.scenario}.json").write_text(json.dumps(figures.__dict__, indent=1) + "\n")


def curation_scenario(tmp_path: Path) -> Scenario:
    from components.cli import main as lyra

    audio, out = tmp_path / "audio", tmp_path / "data" / "curated"
    audio.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):       # 3 x 12 s at 44.1 kHz stereo: decoding, resampling, loudness, segmenting, writing
        sf.write(audio / f"piece{i}.flac", 0.2 * rng.standard_normal((12 * 44100, 2)).astype(np.float32), 44100)

    def reset():
        shutil.rmtree(tmp_path / "data", ignore_errors=True)

    return Scenario("curation", lambda: lyra(["curate", "--input", str(audio), "--out", str(out),
                                              "--metrics", str(tmp_path / "data" / "metrics.json")]),
                    lambda: [out], reset,
                    lambda folder: (folder / "manifest.parquet").is_file() and (folder / "lineage.json").is_file())


def test_killed_curation_leaves_nothing_half_written_and_reruns_to_the_same_bytes(tmp_path):
    figures = campaign(curation_scenario(tmp_path), KILLS["curation"], seed=0)
    record(figures)
    assert figures.kills >= KILLS["curation"] * 2 // 3, figures
    assert figures.half_written == [] and figures.survived == figures.kills
    assert figures.identical == figures.kills, figures.different


def test_a_killed_registration_reruns_to_the_same_version_and_tags(project):
    project.train_codec(seed=0, valid_mel_distance=0.9)
    root = project.root
    head = project.git("rev-parse", "HEAD").strip()

    def reset():
        shutil.rmtree(root / "registry", ignore_errors=True)
        shutil.rmtree(root / "data" / "registry", ignore_errors=True)
        subprocess.run(["git", "reset", "-q", "--hard", head], cwd=root, check=True)
        for tag in project.git("tag", "-l").split():
            subprocess.run(["git", "tag", "-d", tag], cwd=root, capture_output=True, check=True)

    def register():
        from components.registry.registry import Registry

        Registry(root).register("omnicodec", actor="kill-test")
        return 0

    def state() -> str:
        entry = json.loads((root / "registry" / "omnicodec" / "v0.0.1.json").read_text())
        versions = sorted(p.name for p in (root / "registry" / "omnicodec").glob("v*.json"))
        tags = sorted(project.git("tag", "-l").split())
        return json.dumps({"versions": versions, "artifact": entry["artifact"]["digest"], "tags": tags})

    scenario = Scenario("registry", register, lambda: [root / "registry" / "omnicodec"], reset,
                        lambda folder: all(json.loads(p.read_text()) for p in folder.glob("v*.json")), state)
    figures = campaign(scenario, KILLS["registry"], seed=1)
    record(figures)
    assert figures.kills >= KILLS["registry"] * 2 // 3, figures
    assert figures.half_written == [] and figures.survived == figures.kills
    assert figures.identical == figures.kills, figures.different
