"""The evaluator: a contrastive encoder on log-mel crops, kept independent of the conditioner.

Trained on decoded audio of training pieces the conditioner never saw (pairs.split_by_piece), with
two crops of one recording as positives and the other recordings of the batch as negatives
(InfoNCE, both directions); the checkpoint is selected on `valid` retrieval, and `test`
retrieval is reported.

    crop [n] --log-mel (64 bands, hop 256), referenced to its loudest frame--> [64, F]
      --Conv1d(64->128, 5, /2) GELU --Conv1d(128->128, 5, /2) GELU --Conv1d(128->128, 3) GELU
      --mean and std over time--> [256] --Linear--> [dim], l2-normalised

    S(x, y) = cosine of the mean crop embeddings of x and y (3 crops each)

An ensemble of encoders trained from different seeds (`EvaluatorEnsemble`) averages their cosines:
one small encoder's verdicts moved with its initialisation (and with float rounding between thread
counts) by as much as the effect measured, so S is the mean over members.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from components.common.mel import log_mel_spectrogram
from components.common.seeds import rng as seeded_rng

N_MELS, N_FFT, HOP = 64, 1024, 256


def log_mel(audio: np.ndarray, sample_rate: int) -> torch.Tensor:
    """Mono audio -> [64, frames], in log10 power relative to the loudest frame (level-invariant)."""
    x = torch.from_numpy(np.asarray(audio, np.float32))
    if x.numel() < N_FFT:
        x = F.pad(x, (0, N_FFT - x.numel()))
    mel = log_mel_spectrogram(x, sample_rate, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
    return mel - mel.max()


class CropEncoder(nn.Module):
    def __init__(self, dim: int = 64, width: int = 128):
        super().__init__()
        self.convs = nn.Sequential(nn.Conv1d(N_MELS, width, 5, stride=2), nn.GELU(),
                                   nn.Conv1d(width, width, 5, stride=2), nn.GELU(),
                                   nn.Conv1d(width, width, 3), nn.GELU())
        self.head = nn.Linear(2 * width, dim)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """[B, 64, F] -> [B, dim] unit vectors."""
        h = self.convs(mels / 4.0)
        return F.normalize(self.head(torch.cat([h.mean(-1), h.std(-1)], dim=-1)), dim=-1)


@dataclasses.dataclass
class Evaluator:
    encoder: CropEncoder
    sample_rate: int
    crop_seconds: float
    history: dict

    @torch.no_grad()
    def embed(self, pieces: list[np.ndarray], n_crops: int = 3) -> np.ndarray:
        """Mono pieces -> [n, dim]: each the normalised mean of `n_crops` evenly spread crop embeddings."""
        crop = int(round(self.crop_seconds * self.sample_rate))
        out = []
        for audio in pieces:
            audio = np.asarray(audio, np.float32)
            if len(audio) < crop:
                audio = np.pad(audio, (0, crop - len(audio)))
            starts = np.linspace(0, len(audio) - crop, n_crops).round().astype(int)
            mels = torch.stack([log_mel(audio[s:s + crop], self.sample_rate) for s in starts])
            out.append(F.normalize(self.encoder(mels).mean(0), dim=-1).numpy())
        return np.stack(out)

    def similarity(self, a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
        """[len(a), len(b)] cosine similarities."""
        return self.embed(a) @ self.embed(b).T


@dataclasses.dataclass
class EvaluatorEnsemble:
    """Members' embeddings side by side, each scaled by 1/sqrt(m): a dot product of two ensemble
    embeddings is the mean of the members' cosines."""

    members: list[Evaluator]

    def embed(self, pieces: list[np.ndarray], n_crops: int = 3) -> np.ndarray:
        scale = 1.0 / np.sqrt(len(self.members))
        return np.concatenate([m.embed(pieces, n_crops) * scale for m in self.members], axis=1)

    def similarity(self, a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
        return self.embed(a) @ self.embed(b).T

    @property
    def history(self) -> dict:
        """The first member's curve (for the plot) and every member's selected valid retrieval."""
        return {**self.members[0].history,
                "selected_valid_retrieval": float(np.mean([m.history["selected_valid_retrieval"] for m in self.members])),
                "members_valid_retrieval": [m.history["selected_valid_retrieval"] for m in self.members]}


def _crops(audio: np.ndarray, crop: int, g: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two crops of one recording, from its first and second half where it is long enough."""
    n = len(audio)
    if n < 2 * crop:
        a, b = (int(g.integers(0, max(1, n - crop + 1))) for _ in range(2))
    else:
        a, b = int(g.integers(0, n // 2 - crop + 1)), int(g.integers(n // 2, n - crop + 1))
    pad = lambda x: np.pad(x, (0, max(0, crop - len(x))))          # noqa: E731
    return pad(audio[a:a + crop]), pad(audio[b:b + crop])


def retrieval_accuracy(ev: Evaluator | EvaluatorEnsemble, pieces: list[np.ndarray], seed: int) -> float:
    """Share of recordings whose first-half crop's nearest second-half crop (cosine) is its own
    (an ensemble: the mean over its members)."""
    if len(pieces) < 2:
        return float("nan")
    if isinstance(ev, EvaluatorEnsemble):
        return float(np.mean([retrieval_accuracy(m, pieces, seed) for m in ev.members]))
    g = seeded_rng(seed, "retrieval")
    crop = int(round(ev.crop_seconds * ev.sample_rate))
    firsts, seconds = zip(*(_crops(p, crop, g) for p in pieces))
    with torch.no_grad():
        ea = ev.encoder(torch.stack([log_mel(x, ev.sample_rate) for x in firsts]))
        eb = ev.encoder(torch.stack([log_mel(x, ev.sample_rate) for x in seconds]))
    return float(((ea @ eb.T).argmax(1) == torch.arange(len(pieces))).float().mean())


def train_evaluator(train: list[np.ndarray], valid: list[np.ndarray], sample_rate: int, *, steps: int,
                    crop_seconds: float, dim: int, seed: int, batch: int = 16, temperature: float = 0.1,
                    eval_every: int = 25, log=None) -> Evaluator:
    """InfoNCE on two crops per recording; keeps the encoder with the best `valid` retrieval."""
    torch.manual_seed(seed)
    ev = Evaluator(CropEncoder(dim), sample_rate, crop_seconds, {"step": [], "loss": [], "valid_step": [], "valid": []})
    opt = torch.optim.AdamW(ev.encoder.parameters(), lr=2e-3, weight_decay=1e-4)
    crop = int(round(crop_seconds * sample_rate))
    mels = [log_mel(a, sample_rate) for a in train]          # whole recordings once; crops are column slices
    frames = int(round(crop / HOP))
    best, best_state = -1.0, None
    for step in range(steps):
        g = seeded_rng(seed, "evaluator", step)
        rows = g.choice(len(train), size=min(batch, len(train)), replace=False)
        a, b = [], []
        for r in rows:
            m = mels[r]
            F_ = m.shape[1]
            half = max(frames, F_ // 2)
            s1 = int(g.integers(0, max(1, min(half, F_) - frames + 1)))
            s2 = int(g.integers(min(half, max(0, F_ - frames)), max(0, F_ - frames) + 1))
            a.append(_fit(m[:, s1:s1 + frames], frames))
            b.append(_fit(m[:, s2:s2 + frames], frames))
        za, zb = ev.encoder(torch.stack(a)), ev.encoder(torch.stack(b))
        logits = za @ zb.T / temperature
        target = torch.arange(len(rows))
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        ev.history["step"].append(step + 1)
        ev.history["loss"].append(float(loss))
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            ev.encoder.eval()
            acc = retrieval_accuracy(ev, valid, seed)
            ev.encoder.train()
            ev.history["valid_step"].append(step + 1)
            ev.history["valid"].append(acc)
            if log:
                log.info("evaluator step %d  InfoNCE %.3f  valid retrieval %.2f", step + 1, float(loss), acc)
            if acc > best:
                best, best_state = acc, copy.deepcopy(ev.encoder.state_dict())
    if best_state is not None:
        ev.encoder.load_state_dict(best_state)
    ev.encoder.eval()
    ev.history["selected_valid_retrieval"] = best
    return ev


def _fit(m: torch.Tensor, frames: int) -> torch.Tensor:
    return m if m.shape[1] == frames else F.pad(m, (0, frames - m.shape[1]), value=float(m.min()) if m.numel() else 0.0)
