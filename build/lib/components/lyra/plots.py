"""Figures attached to Lyra's outputs: the loss curve and spectrograms of generated audio."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from components.common.atomic import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss_curve(path: str | os.PathLike, train: Sequence[tuple[int, float]], valid: Sequence[tuple[int, float]],
                    unigram: float | None, title: str = "Lyra pretraining", selected: int | None = None) -> Path:
    """Training loss per step, validation loss on held-out pieces, and the unigram baseline."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    if train:
        steps, losses = zip(*train)
        ax.plot(steps, losses, lw=1, alpha=0.8, label="train (per step)")
    if valid:
        steps, losses = zip(*valid)
        ax.plot(steps, losses, "o-", lw=2, label="validation (held-out pieces)")
    if unigram is not None:
        ax.axhline(unigram, color="grey", ls="--", label=f"unigram baseline ({unigram:.2f})")
    if selected is not None:
        ax.axvline(selected, color="green", ls=":", label=f"saved model (step {selected})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats / code)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


def plot_spectrograms(path: str | os.PathLike, log_mels: Sequence[np.ndarray], titles: Sequence[str],
                      seconds: Sequence[float]) -> Path:
    """One log-mel panel [n_mels, frames] per generated piece, stacked vertically."""
    plt = _pyplot()
    n = max(1, len(log_mels))
    fig, axes = plt.subplots(n, 1, figsize=(9, 1.9 * n), dpi=100, squeeze=False)
    for ax, mel, title, secs in zip(axes[:, 0], log_mels, titles, seconds):
        ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", extent=(0, secs, 0, mel.shape[0]))
        ax.set_title(title if len(title) < 110 else title[:107] + "...", fontsize=8)
        ax.set_ylabel("mel bin", fontsize=7)
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
