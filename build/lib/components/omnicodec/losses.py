"""Training losses and quality measures of OmniCodec.

* multi-scale log-mel L1 (DAC): mel spectrograms at 7 window sizes, 32 .. 2048 samples, so both
  transients and pitch resolution count; also the `mel_distance` reported by evaluation;
* LSGAN adversarial losses and feature matching over all sub-discriminators (HiFi-GAN/DAC);
* SI-SDR (scale-invariant signal-to-distortion ratio) for evaluation.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from components.common.mel import mel_spectrogram


class MultiScaleMelLoss(torch.nn.Module):
    def __init__(self, sample_rate: int, windows=(32, 64, 128, 256, 512, 1024, 2048),
                 n_mels=(5, 10, 20, 40, 80, 160, 320), eps: float = 1e-5):
        super().__init__()
        self.sample_rate, self.windows, self.n_mels, self.eps = sample_rate, list(windows), list(n_mels), eps

    def forward(self, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """[B, 1, T] x 2 -> mean over scales of the L1 distance between log10 mel spectrograms."""
        estimate, target = estimate.float(), target.float()
        total = estimate.new_zeros(())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # librosa warns about empty mel bands at the smallest windows
            for window, mels in zip(self.windows, self.n_mels):
                kw = dict(n_fft=window, hop_length=window // 4, n_mels=mels)
                est = mel_spectrogram(estimate, self.sample_rate, **kw).clamp_min(self.eps).log10()
                ref = mel_spectrogram(target, self.sample_rate, **kw).clamp_min(self.eps).log10()
                total = total + F.l1_loss(est, ref)
        return total / len(self.windows)


def discriminator_loss(real_outputs, fake_outputs) -> torch.Tensor:
    """LSGAN: real logits -> 1, fake logits -> 0, summed over sub-discriminators."""
    loss = 0.0
    for (real, _), (fake, _) in zip(real_outputs, fake_outputs):
        loss = loss + (1 - real.float()).pow(2).mean() + fake.float().pow(2).mean()
    return loss


def generator_adversarial_loss(fake_outputs) -> torch.Tensor:
    loss = 0.0
    for fake, _ in fake_outputs:
        loss = loss + (1 - fake.float()).pow(2).mean()
    return loss


def feature_matching_loss(real_outputs, fake_outputs) -> torch.Tensor:
    """L1 between discriminator features of real and reconstructed audio (real side detached)."""
    loss, count = 0.0, 0
    for (_, real_feats), (_, fake_feats) in zip(real_outputs, fake_outputs):
        for real, fake in zip(real_feats, fake_feats):
            loss = loss + F.l1_loss(fake.float(), real.detach().float())
            count += 1
    return loss / max(count, 1)


def si_sdr(estimate: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """[..., T] x 2 -> [...] scale-invariant SDR in dB (zero-mean signals, optimal scaling of the target)."""
    estimate = estimate.double() - estimate.double().mean(-1, keepdim=True)
    target = target.double() - target.double().mean(-1, keepdim=True)
    scale = (estimate * target).sum(-1, keepdim=True) / (target.pow(2).sum(-1, keepdim=True) + eps)
    projection = scale * target
    noise = estimate - projection
    ratio = projection.pow(2).sum(-1) / (noise.pow(2).sum(-1) + eps)
    return (10 * torch.log10(ratio + eps)).float()
