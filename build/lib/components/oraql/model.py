"""What ORAQL is: a no-reference music-quality model, audio of any length -> three scores in [0, 1].

    audio [B, n] at 16 kHz ──RMS to -23 dBFS (gain within +-30 dB: loudness alone tells nothing)
        ──log10 mel [B, 64, T] (20 ms frames)──► conv encoder: per block a stride-2 conv k5 + GroupNorm
                                                  + GELU: T -> T / 2^blocks  (50 -> 6.25 Hz)
        E [B, C, T'] ──┬─ mean, std and max over time ...................... what the sound is like
                       └─ structure: unit-norm projections P [B, 32, T'] ... what the music does over time
                            novelty  1 - cos(p_t, p_t+1): mean, max, std     (cuts, jumps)
                            repeats  r_l = mean_t cos(p_t, p_t+l), l >= 2:   (loops)
                                     max, mean and the top 3
        [3C + 8] ──MLP──► logits [B, 3] ──sigmoid──► overall, fidelity (signal), coherence (music)

Longer audio is scored in windows of `window_seconds` (the crop length it was trained on), the last
window ending at the end of the audio; a file's score is the mean over its windows.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from components.common.mel import log_mel_spectrogram
from components.oraql.config import OraqlModelConfig

HEADS = ("overall", "fidelity", "coherence")
TARGET_RMS = 10 ** (-23 / 20)
MAX_GAIN = 10 ** (30 / 20)
LOG_MEL_CENTER, LOG_MEL_SCALE = -3.0, 1.5     # log10 mel of music at -23 dBFS spans about -5 .. 0
STRUCTURE_DIM, MIN_LAG = 32, 2
WEIGHTS_FILE, CONFIG_FILE = "model.safetensors", "config.json"


def log_mel_features(audio: torch.Tensor, cfg: OraqlModelConfig) -> torch.Tensor:
    """[B, n] at cfg.sample_rate -> [B, n_mels, frames], level-normalised and scaled to about [-1, 1]."""
    audio = audio.float()
    rms = audio.pow(2).mean(dim=-1, keepdim=True).sqrt()
    gain = (TARGET_RMS / rms.clamp_min(1e-9)).clamp(max=MAX_GAIN)
    mel = log_mel_spectrogram(audio * gain, cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                              n_mels=cfg.n_mels)
    return (mel - LOG_MEL_CENTER) / LOG_MEL_SCALE


class ConvBlock(nn.Module):
    """conv (stride 2: half the frame rate) + GroupNorm + GELU."""

    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, k, stride=2, padding=k // 2)
        self.norm = nn.GroupNorm(min(8, c_out), c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.norm(self.conv(x)))


def structure_features(p: torch.Tensor) -> torch.Tensor:
    """p [B, D, T'] -> [B, 8]: novelty (mean, max, std) and repetition (max, mean, top 3) statistics."""
    p = F.normalize(p, dim=1)
    T = p.shape[-1]
    if T < 2 * MIN_LAG + 1:
        return p.new_zeros(p.shape[0], 8)
    novelty = 1 - (p[..., 1:] * p[..., :-1]).sum(dim=1)                       # [B, T'-1]
    sim = torch.einsum("bdt,bds->bts", p, p)                                 # [B, T', T']
    lags = range(MIN_LAG, T // 2 + 1)
    repeats = torch.stack([torch.diagonal(sim, offset=l, dim1=1, dim2=2).mean(-1) for l in lags], dim=-1)
    top = repeats.topk(min(3, repeats.shape[-1]), dim=-1).values
    top = F.pad(top, (0, 3 - top.shape[-1]), value=0.0)
    return torch.cat([novelty.mean(-1, keepdim=True), novelty.amax(-1, keepdim=True), novelty.std(-1, keepdim=True),
                      repeats.amax(-1, keepdim=True), repeats.mean(-1, keepdim=True), top], dim=-1)


class Oraql(nn.Module):
    def __init__(self, config: OraqlModelConfig):
        super().__init__()
        self.config = config
        chans = [config.n_mels, *config.channels]
        self.encoder = nn.Sequential(*[ConvBlock(a, b, config.kernel_size) for a, b in zip(chans[:-1], chans[1:])])
        width = chans[-1]
        self.project = nn.Conv1d(width, STRUCTURE_DIM, 1)
        self.head = nn.Sequential(nn.Linear(3 * width + 8, config.head_hidden), nn.GELU(), nn.Dropout(config.dropout),
                                  nn.Linear(config.head_hidden, len(HEADS)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features [B, n_mels, T] (log_mel_features) -> logits [B, 3] (overall, fidelity, coherence)."""
        e = self.encoder(features.float())
        spread = e.std(-1) if e.shape[-1] > 1 else torch.zeros_like(e[..., 0])
        pooled = torch.cat([e.mean(-1), spread, e.amax(-1)], dim=-1)
        return self.head(torch.cat([pooled, structure_features(self.project(e))], dim=-1))

    @torch.no_grad()
    def score_features(self, features: torch.Tensor) -> torch.Tensor:
        """[B, n_mels, T] -> scores [B, 3] in [0, 1]."""
        return torch.sigmoid(self(features))

    # ---- persistence
    def save_pretrained(self, directory: str | os.PathLike, *, extra: dict | None = None) -> None:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, str(directory / WEIGHTS_FILE))
        (directory / CONFIG_FILE).write_text(json.dumps(
            {"model_type": "oraql", "heads": list(HEADS), **self.config.model_dump(mode="json"), **(extra or {})},
            indent=2) + "\n")


def load_oraql(model_dir: str | os.PathLike) -> Oraql:
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    if not (model_dir / CONFIG_FILE).is_file() or not (model_dir / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"{model_dir} holds no ORAQL model ({CONFIG_FILE} + {WEIGHTS_FILE}); "
                                "train one with `lyra oraql train`")
    raw = json.loads((model_dir / CONFIG_FILE).read_text())
    config = OraqlModelConfig(**{k: v for k, v in raw.items() if k in OraqlModelConfig.model_fields})
    model = Oraql(config)
    model.load_state_dict(load_file(str(model_dir / WEIGHTS_FILE)))
    return model.eval()
