"""Shared fixtures: a synthetic learnable token dataset and a small Lyra trained on it (once per session)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.lyra.synthetic import CODEBOOK_SIZE, FRAME_RATE, write_synthetic_tokens

# small enough to train in ~10 s on one core, big enough to learn styles, cycles and endings
TRAIN_SETTINGS = {
    "model": {"dim": 64, "n_layers": 2, "n_heads": 2, "window_frames": 16, "n_text_tokens": 1, "max_seconds": 10.0},
    "nproc": 1, "steps": 300, "micro_batch": 16, "lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 20,
    "eval_every": 100, "log_every": 50, "checkpoint_every": 100, "eval_windows": 64, "cond_dropout": 0.2,
}


@pytest.fixture(scope="session")
def synthetic_tokens(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokens")
    facts = write_synthetic_tokens(root)
    return root, facts


@pytest.fixture(scope="session")
def trained(synthetic_tokens, tmp_path_factory):
    """(model folder, metrics, dataset facts) of one short training run."""
    from components.lyra.config import LMConfig
    from components.lyra.train import train

    tokens, facts = synthetic_tokens
    out = tmp_path_factory.mktemp("models") / "lyra"
    torch.set_num_threads(1)
    metrics = train(LMConfig.model_validate(TRAIN_SETTINGS), tokens, out)
    return out, metrics, facts


class SineCodec:
    """Stands in for OmniCodec: each frame becomes 0.1 s of two sines, pitched by codebooks 0 and 1.

    Codebook 1 is a function of codebook 0 *and the style* (synthetic.py), so a style's pieces use
    their own set of upper pitches: a listener (the judge) can tell the styles apart from the audio."""

    sample_rate = 16_000
    frame_rate = FRAME_RATE
    num_codebooks = 4
    codebook_size = CODEBOOK_SIZE

    def parameters(self):
        return iter([torch.zeros(1)])

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        B, K, T = codes.shape
        hop = int(self.sample_rate / self.frame_rate)
        low = 220.0 * 2 ** (codes[:, 0].float() / 12)                         # [B, T]
        high = 880.0 * 2 ** (codes[:, 1].float() / 12)
        t = torch.arange(hop) / self.sample_rate
        wave = 0.15 * (torch.sin(2 * np.pi * low[..., None] * t) + torch.sin(2 * np.pi * high[..., None] * t))  # [B, T, hop]
        return wave.reshape(B, 1, T * hop)


@pytest.fixture
def sine_codec(monkeypatch, tmp_path):
    """`--codec <dir>` loads the SineCodec; the folder holds a config.json so it has an identity."""
    from components.omnicodec import decoding as codec_io

    folder = tmp_path / "codec"
    folder.mkdir()
    (folder / "config.json").write_text('{"sine_codec": true}\n')
    monkeypatch.setattr(codec_io, "load_codec", lambda path, device="cpu": SineCodec())
    return folder


@pytest.fixture
def style_prompts(monkeypatch, synthetic_tokens):
    """Prompts "style N ..." embed to style N's embedding (the synthetic data's 'text encoder')."""
    from components.lyra import text

    _, facts = synthetic_tokens

    def encode(prompts):
        return np.stack([facts["embeddings"][int(p.split()[1])] for p in prompts]).astype(np.float32)

    monkeypatch.setattr(text, "encode_prompts", encode)
    return encode


@pytest.fixture
def judge_dir(synthetic_tokens, sine_codec, tmp_path):
    """A conditioning judge trained by `lyra judge train` on the synthetic clips decoded by the SineCodec."""
    from components.cli import main as lyra
    from tests.lyra.synthetic import write_curated_manifest

    tokens, facts = synthetic_tokens
    write_curated_manifest(tmp_path / "curated", facts["clips"])
    params = tmp_path / "judge_params.yaml"
    params.write_text("profile: tiny\ntiny:\n  judge: {crop_seconds: 1.0, crops_per_clip: 2}\n")
    out = tmp_path / "judge"
    assert lyra(["judge", "train", "--tokens", str(tokens), "--codec", str(sine_codec), "--curated",
                 str(tmp_path / "curated"), "--out", str(out), "--metrics", str(tmp_path / "judge.json"),
                 "--params", str(params)]) == 0
    return out
