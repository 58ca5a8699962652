"""A throwaway project: a git repository with the real params.yaml, model folders as the stages leave
them (weights + config + training state) and the metrics files the blocking checks read."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]

# what `lyra codec eval` / `lyra codec train` report, reduced to what the gates read
CODEC_EVAL = {"mel_distance": 0.9, "untrained": {"mel_distance": 2.1, "visqol": 2.5}, "visqol": 3.3,
              "code_information_mel_gap": 0.3, "clip_ids": ["a", "b"], "bitrate_kbps": 2.0}
LYRA_PRETRAIN = {"val_loss": 5.2, "unigram_val_loss": 6.7, "val_vs_unigram": 0.78, "test_loss": 5.3}
LYRA_SAMPLES = {"judge_instrument_accuracy_text": 0.6, "judge_instrument_accuracy_no_text": 0.1,
                "judge_instrument_p_text_vs_no_text": 1e-6, "judge_instrument_n": 64,
                "independent_valid_kad_with_text": 340.0, "independent_valid_adherence_with_text": 0.55}


class Project:
    def __init__(self, root: Path):
        self.root = root

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.root, capture_output=True, text=True, check=True).stdout

    def write_metrics(self, stage: str, metrics: dict) -> None:
        path = self.root / "data" / "metrics" / f"{stage}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(metrics))

    def train_codec(self, seed: int, valid_mel_distance: float, eval_metrics: dict | None = None) -> Path:
        """A small real OmniCodec in data/models/omnicodec, with the optimizer state a training run leaves."""
        from components.omnicodec.config import CodecModelConfig
        from components.omnicodec.model import build_codec
        from tests.omnicodec.conftest import SMALL_MODEL

        folder = self.root / "data" / "models" / "omnicodec"
        shutil.rmtree(folder, ignore_errors=True)
        build_codec(CodecModelConfig(**SMALL_MODEL), seed).save_pretrained(folder, extra_config={"init_seed": seed})
        (folder / "checkpoints").mkdir()
        torch.save({"optimizer": torch.zeros(1000)}, folder / "checkpoints" / "last.pt")
        (folder / "examples").mkdir()
        self._wav(folder / "examples" / "0_input.wav", 440.0)
        self.write_lineage(folder, "omnicodec")
        self.write_metrics("omnicodec", {"valid_mel_distance": valid_mel_distance, "steps": 10})
        self.write_metrics("omnicodec_eval", eval_metrics or CODEC_EVAL)
        return folder

    def train_lyra(self, seed: int, val_loss: float = 5.2) -> Path:
        from components.lyra.model import LyraConfig, LyraForMusicGeneration

        folder = self.root / "data" / "models" / "lyra"
        shutil.rmtree(folder, ignore_errors=True)
        torch.manual_seed(seed)
        LyraForMusicGeneration(LyraConfig(num_codebooks=4, codebook_size=16, frame_rate=10.0, sample_rate=16_000,
                                          hidden_size=32, num_attention_heads=2, num_hidden_layers=2, window_frames=16,
                                          n_text_tokens=1, max_seconds=10.0)).save_pretrained(folder)
        (folder / "checkpoints" / "step0000010").mkdir(parents=True)
        torch.save({"exp_avg": torch.zeros(5000)}, folder / "checkpoints" / "step0000010" / "optim_states.pt")
        self.write_lineage(folder, "lyra_pretrain")
        self.write_metrics("lyra_pretrain", {**LYRA_PRETRAIN, "val_loss": val_loss})
        self.write_metrics("lyra_samples", LYRA_SAMPLES)
        return folder

    def write_lineage(self, folder: Path, stage: str) -> None:
        """What the stage writes beside its output (StageRun.output); the registry refuses folders without it."""
        from components.common.lineage import write_lineage

        write_lineage(folder, stage=stage, inputs={}, params={"seed": 0})

    def _wav(self, path: Path, hz: float) -> None:
        import numpy as np
        import soundfile as sf

        t = np.arange(8000) / 16000
        sf.write(path, 0.3 * np.sin(2 * np.pi * hz * t), 16000)

    def registry(self):
        from components.registry.registry import Registry

        return Registry(self.root)


@pytest.fixture
def project(tmp_path, monkeypatch) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    for name in ("params.yaml", ".gto", ".gitignore"):
        shutil.copy2(REPO / name, root / name)
    curated = root / "data" / "curated"
    curated.mkdir(parents=True)
    (curated / "manifest.txt").write_text("clip a\nclip b\n")     # the held-out data the versions share
    (root / "data" / "tokens").mkdir()
    (root / "data" / "tokens" / "index.txt").write_text("shard 0\n")
    p = Project(root)
    p.git("init", "-q")
    p.git("add", "-A")
    p.git("-c", "user.name=setup", "-c", "user.email=s@x", "commit", "-qm", "project")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))    # no identity: the actor commits
    # these tests read the record in the project's own git (a platform team's setting); the demo's default,
    # a registry repository of its own, is tested in test_registry_repository.py
    monkeypatch.setenv("LYRA_REGISTRY_REPO", str(root))
    torch.set_num_threads(1)
    return p
