"""SEANet-family convolutional encoder and decoder (no LSTM: it is slow on CPU).

The waveform is first folded into `patch_size` channels (a lossless reshape), so the costliest
full-rate layers run at sample_rate / patch_size; then each block halves/doubles the time axis by
its stride while the channels double/halve:

    encoder  wav [B, 1, T] -> patches [B, P, T/P] -> conv -> (res units -> strided conv) x len(strides)
             -> act -> conv -> latent [B, D, T/hop]          hop = P * prod(strides)
    decoder  latent [B, D, T/hop] -> conv -> (act -> upsampling conv -> res units) x len(strides)
             -> act -> x P linear interpolation -> conv -> wav [B, 1, T]      (output_stage "interpolate")
                    or conv -> patches [B, P, T/P] -> wav [B, 1, T]           (output_stage "patches")
             tanh keeps it in [-1, 1]
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from components.omnicodec.layers import ResidualUnit, activation, upsampling_conv, wn_conv1d


def hop_length(patch_size: int, strides: tuple[int, ...] | list[int]) -> int:
    return patch_size * math.prod(strides)


class EncoderBlock(nn.Sequential):
    """Residual units at `in_ch`, then a strided conv to `out_ch` that divides time by `stride`."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, *, dilations, kernel_size: int, act: str,
                 compress: int):
        units = [ResidualUnit(in_ch, dilation=d, kernel_size=kernel_size, act=act, compress=compress) for d in dilations]
        super().__init__(*units, activation(act, in_ch), wn_conv1d(in_ch, out_ch, 2 * stride, stride=stride))


class DecoderBlock(nn.Sequential):
    """An upsampling conv to `out_ch` (resize-conv or transposed; layers.py) that multiplies time by `stride`,
    then residual units."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, *, dilations, kernel_size: int, act: str,
                 compress: int, upsampling: str):
        units = [ResidualUnit(out_ch, dilation=d, kernel_size=kernel_size, act=act, compress=compress) for d in dilations]
        super().__init__(activation(act, in_ch), upsampling_conv(in_ch, out_ch, stride, upsampling), *units)


class Encoder(nn.Module):
    def __init__(self, *, patch_size: int, channels: int, strides, latent_dim: int, dilations, kernel_size: int,
                 act: str, compress: int = 1):
        super().__init__()
        self.patch_size = patch_size
        layers: list[nn.Module] = [wn_conv1d(patch_size, channels, 7)]
        ch = channels
        for stride in strides:
            layers.append(EncoderBlock(ch, ch * 2, stride, dilations=dilations, kernel_size=kernel_size, act=act,
                                       compress=compress))
            ch *= 2
        layers += [activation(act, ch), wn_conv1d(ch, latent_dim, 3)]
        self.layers = nn.Sequential(*layers)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """wav [B, 1, T] (T a multiple of the hop) -> latent [B, D, T / hop]."""
        x = rearrange(wav, "b 1 (t p) -> b p t", p=self.patch_size)
        return self.layers(x)


class Decoder(nn.Module):
    def __init__(self, *, patch_size: int, channels: int, strides, latent_dim: int, dilations, kernel_size: int,
                 act: str, upsampling: str, output_stage: str, compress: int = 1):
        super().__init__()
        self.patch_size = patch_size
        layers: list[nn.Module] = [wn_conv1d(latent_dim, channels, 7)]
        ch = channels
        for stride in reversed(strides):
            layers.append(DecoderBlock(ch, ch // 2, stride, dilations=dilations, kernel_size=kernel_size, act=act,
                                       compress=compress, upsampling=upsampling))
            ch //= 2
        if output_stage == "interpolate":      # [B, ch, T/P] -> [B, ch, T] -> conv at the sample rate -> [B, 1, T]
            layers += [activation(act, ch), nn.Upsample(scale_factor=patch_size, mode="linear", align_corners=False),
                       wn_conv1d(ch, 1, 7)]
        else:                                   # [B, ch, T/P] -> [B, P, T/P], unfolded in forward
            layers += [activation(act, ch), wn_conv1d(ch, patch_size, 7)]
        self.layers = nn.Sequential(*layers)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """latent [B, D, frames] -> wav [B, 1, frames * hop]."""
        out = torch.tanh(self.layers(latent))
        return out if out.shape[1] == 1 else rearrange(out, "b p t -> b 1 (t p)")
