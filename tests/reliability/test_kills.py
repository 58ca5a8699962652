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
KILLS = {"curation": 100 if FULL else 12, "registry": 80 if FULL else 16, "training": 60 if FULL else 6}
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

    # what a registration imports (the report's plots, the pipeline's stage table) is imported here, once: the
    # forked attempts then spend their time registering, and the kills land there
    import matplotlib.pyplot  # noqa: F401
    import components.common.audio  # noqa: F401 - scipy.signal, ~1 s
    import components.pipeline  # noqa: F401
    import components.registry.report  # noqa: F401

    scenario = Scenario("registry", register, lambda: [root / "registry" / "omnicodec"], reset,
                        lambda folder: all(json.loads(p.read_text()) for p in folder.glob("v*.json")), state)
    figures = campaign(scenario, KILLS["registry"], seed=1)
    record(figures)
    assert figures.kills >= KILLS["registry"] * 2 // 3, figures
    assert figures.half_written == [] and figures.survived == figures.kills
    assert figures.identical == figures.kills, figures.different


def test_a_killed_training_resumes_to_the_same_weights(tmp_path):
    """ORAQL's trainer (components/oraql/train.py:fit) with its resume folder, then the model folder swapped in
    whole: kills land in training steps, checkpoint writes and the final swap; every rerun resumes from what the
    kill left and ends with the same weights and history, byte for byte."""
    import torch

    from components.common.atomic import atomic_dir
    from components.common.resume import ResumeFolder, checkpoint_folder
    from components.oraql.train import fit
    from tests.oraql.test_training import config, noisy_set

    torch.set_num_threads(1)
    (train, _), (valid, _) = noisy_set(list(range(64))), noisy_set(list(range(100, 116)))
    cfg = config().model_copy(update={"checkpoint_every": 10})
    out = tmp_path / "data" / "oraql"

    def run() -> int:
        checkpoint = ResumeFolder(checkpoint_folder(out), "kill-campaign")
        model, history = fit(train, valid, cfg, checkpoint)
        history.pop("resumed_from_step")
        with atomic_dir(out) as staging:
            model.save_pretrained(staging)
            (staging / "history.json").write_text(json.dumps(history))
        checkpoint.remove()
        return 0

    scenario = Scenario("training", run, lambda: [out], lambda: shutil.rmtree(tmp_path / "data", ignore_errors=True),
                        lambda folder: (folder / "history.json").is_file())
    figures = campaign(scenario, KILLS["training"], seed=2)
    record(figures)
    assert figures.kills >= KILLS["training"] * 2 // 3, figures
    assert figures.half_written == [] and figures.survived == figures.kills
    assert figures.identical == figures.kills, figures.different
