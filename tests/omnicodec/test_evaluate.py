"""The information check: a decoder that ignores its codes shows no gap, one that uses them does."""

import numpy as np
import pytest
import torch

from components.omnicodec.evaluate import code_information_gap
from components.omnicodec.losses import MultiScaleMelLoss

SR, HOP = 8000, 80


class ToneCodec:
    """Each frame decodes to a tone whose pitch is codebook 0's code (or one fixed tone: `ignores_codes`)."""

    def __init__(self, ignores_codes: bool):
        self.ignores_codes = ignores_codes

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        pitch = torch.full_like(codes[:, 0], 10) if self.ignores_codes else codes[:, 0]
        freq = 100.0 * (1 + pitch.float())                                   # [B, T]
        t = torch.arange(HOP) / SR
        return (0.3 * torch.sin(2 * np.pi * freq[..., None] * t)).reshape(codes.shape[0], 1, -1)


def test_gap_is_zero_when_the_decoder_ignores_its_codes_and_positive_when_it_uses_them():
    codes = [np.full((2, 50), c, dtype=np.int64) for c in (2, 9, 20)]
    clips = [ToneCodec(False).decode(torch.from_numpy(c)[None])[0, 0].numpy() for c in codes]
    mel = MultiScaleMelLoss(SR, [256, 512], [20, 40])
    assert code_information_gap(ToneCodec(True), clips, codes, mel) == 0.0
    assert code_information_gap(ToneCodec(False), clips, codes, mel) > 0.5
    assert code_information_gap(ToneCodec(False), clips[:1], codes[:1], mel) is None


def test_frame_periodic_share_finds_a_drone_at_the_frame_rate():
    from components.omnicodec.evaluate import frame_periodic_share

    rng = np.random.default_rng(0)
    hop = 480
    drone = np.tile(rng.standard_normal(hop), 50)                     # one frame's waveform, repeated
    music = rng.standard_normal(50 * hop)
    assert frame_periodic_share(drone, hop) == pytest.approx(1.0)
    assert frame_periodic_share(music, hop) < 0.05
    assert 0.4 < frame_periodic_share(drone + music, hop) < 0.6
