"""A tiny Lyra, a tiny OmniCodec that speaks its codes, and synthetic recordings whose reference matters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from components.influence.pairs import Recording

K, V, FRAME_RATE = 4, 16, 10.0


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def tiny_lyra(seed: int = 0):
    from components.lyra.model import LyraConfig, LyraForMusicGeneration

    torch.manual_seed(seed)
    config = LyraConfig(num_codebooks=K, codebook_size=V, hidden_size=32, num_attention_heads=2, num_hidden_layers=2,
                        window_frames=16, n_text_tokens=1, frame_rate=FRAME_RATE, max_seconds=20.0, text_every_step=True)
    return LyraForMusicGeneration(config)


@pytest.fixture(scope="session")
def tiny_codec():
    from components.omnicodec.config import CodecModelConfig
    from components.omnicodec.model import build_codec

    codec = build_codec(CodecModelConfig(channels=4, decoder_channels=32, latent_dim=16, num_codebooks=K,
                                         codebook_size=V, residual_dilations=[1, 3]), seed=0)
    return codec.eval()


def influence_config(**overrides):
    from components.influence.config import InfluenceConfig

    # 10 Hz codes: a 2 s excerpt = 20 frames -> 4 tokens at 2 Hz (stride 5)
    values = dict(reference_seconds=2.0, token_rate_hz=2.0, codebooks=3, codebook_size=8, width=16, lora_rank=4,
                  steps=12, batch=8, lr=3e-3, warmup_steps=2, checkpoint_every=4, eval_references=2,
                  independent_references=2)
    values.update(overrides)
    return InfluenceConfig(**values)


def synthetic_recordings(n: int = 12, frames: int = 60, seed: int = 0) -> list[Recording]:
    """Each recording cycles through its own style's codes (style = i % 3); the text says nothing."""
    g = np.random.default_rng(seed)
    cycles = [g.permutation(V)[:5] for _ in range(3)]
    out = []
    for i in range(n):
        style = i % 3
        c0 = np.resize(np.roll(cycles[style], int(g.integers(5))), frames)
        codes = np.stack([(c0 + k * (style + 1)) % V for k in range(K)]).astype(np.int64)
        out.append(Recording(name=f"r{i}", piece_id=f"p{i}", split="train", codes=codes,
                             text=np.zeros(384, np.float32), caption="", seconds_total=frames / FRAME_RATE,
                             instrument=f"style{style}", clip_starts=[0.0], clip_ids=[f"r{i}-000"]))
    return out
