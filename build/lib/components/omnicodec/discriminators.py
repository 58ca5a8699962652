"""Discriminators for adversarial training: multi-period (HiFi-GAN) and multi-scale STFT (EnCodec).

Each sub-discriminator maps wav [B, 1, T] to (logits, [feature maps]); the feature maps feed the
feature-matching loss. Widths are set by `channels` so the tiny profile can afford them on CPU.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn
from torch.nn.utils.parametrizations import weight_norm
import torch.nn.functional as F


def _wn_conv2d(in_ch: int, out_ch: int, kernel, stride=1, dilation=1, padding=0) -> nn.Module:
    return weight_norm(nn.Conv2d(in_ch, out_ch, kernel, stride=stride, dilation=dilation, padding=padding))


class PeriodDiscriminator(nn.Module):
    """Folds the waveform into [T / period, period] and convolves along time: sees periodic structure."""

    def __init__(self, period: int, channels: int):
        super().__init__()
        self.period = period
        widths = [1, channels, channels * 4, channels * 8, channels * 8]
        self.convs = nn.ModuleList(
            _wn_conv2d(widths[i], widths[i + 1], (5, 1), stride=(3, 1) if i < 3 else 1, padding=(2, 0))
            for i in range(len(widths) - 1)
        )
        self.out = _wn_conv2d(widths[-1], 1, (3, 1), padding=(1, 0))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        pad = (-wav.shape[-1]) % self.period
        x = F.pad(wav, (0, pad), mode="reflect")
        x = rearrange(x, "b c (t p) -> b c t p", p=self.period)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            features.append(x)
        return self.out(x), features


class STFTDiscriminator(nn.Module):
    """2-D convs over a complex spectrogram (real and imaginary parts as two channels)."""

    def __init__(self, window: int, channels: int):
        super().__init__()
        self.window, self.hop = window, window // 4
        self.register_buffer("hann", torch.hann_window(window), persistent=False)
        self.convs = nn.ModuleList([
            _wn_conv2d(2, channels, (3, 9), padding=(1, 4)),
            _wn_conv2d(channels, channels, (3, 9), stride=(1, 2), dilation=(1, 1), padding=(1, 4)),
            _wn_conv2d(channels, channels, (3, 9), stride=(1, 2), dilation=(2, 1), padding=(2, 4)),
            _wn_conv2d(channels, channels, (3, 9), stride=(1, 2), dilation=(4, 1), padding=(4, 4)),
            _wn_conv2d(channels, channels, (3, 3), padding=(1, 1)),
        ])
        self.out = _wn_conv2d(channels, 1, (3, 3), padding=(1, 1))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(rearrange(wav, "b 1 t -> b t").float(), self.window, self.hop,
                          window=self.hann.float(), return_complex=True)
        x = rearrange(torch.view_as_real(spec), "b f t c -> b c t f").to(wav.dtype)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            features.append(x)
        return self.out(x), features


class Discriminator(nn.Module):
    """All sub-discriminators; forward returns one (logits, features) pair per sub-discriminator."""

    def __init__(self, *, channels: int, periods, stft_windows):
        super().__init__()
        self.subs = nn.ModuleList(
            [PeriodDiscriminator(p, channels) for p in periods] + [STFTDiscriminator(w, channels) for w in stft_windows]
        )

    def forward(self, wav: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [sub(wav) for sub in self.subs]
