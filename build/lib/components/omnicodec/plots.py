"""Figures attached to the model and eval folders: loss curves, spectrograms, quality vs bitrate."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from components.common.atomic import atomic_path  # noqa: E402
from components.common.mel import log_mel_spectrogram  # noqa: E402


def _save(fig, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def loss_curve(history: list[dict], path: Path, adv_start_step: int | None = None) -> Path:
    """history rows: {"step", "mel", "commitment", "adv", "fm", "disc", "valid_mel"?}."""
    keys = [k for k in ("mel", "commitment", "adv", "fm", "disc") if any(k in h for h in history)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for key in keys:
        rows = [h for h in history if key in h]
        axes[0].plot([h["step"] for h in rows], [h[key] for h in rows], label=key)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("step")
    axes[0].set_title("training losses")
    valid = [h for h in history if "valid_mel" in h]
    axes[1].plot([h["step"] for h in valid], [h["valid_mel"] for h in valid], marker="o", color="k")
    axes[1].set_xlabel("step")
    axes[1].set_title("validation multi-scale mel distance")
    for ax in axes:
        if adv_start_step is not None:
            ax.axvline(adv_start_step, color="grey", linestyle=":", label="adversarial on")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return _save(fig, path)


def spectrogram_pairs(inputs, reconstructions, sample_rate: int, path: Path, titles=None) -> Path:
    """Input (left) vs reconstruction (right) log-mel spectrograms, one row per example; [N, 1, T] tensors."""
    n = len(inputs)
    fig, axes = plt.subplots(n, 2, figsize=(10, 2.2 * n), squeeze=False)
    for i in range(n):
        for j, (audio, name) in enumerate(((inputs[i], "input"), (reconstructions[i], "reconstruction"))):
            mel = log_mel_spectrogram(audio.reshape(-1).float(), sample_rate, n_fft=1024, hop_length=256, n_mels=80)
            axes[i, j].imshow(mel.numpy(), origin="lower", aspect="auto", cmap="magma", vmin=-5, vmax=float(mel.max()))
            axes[i, j].set_title(f"{titles[i] if titles else i}: {name}", fontsize=8)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
    return _save(fig, path)


def quality_vs_bitrate(rows: list[dict], untrained: list[dict], path: Path, ood: list[dict] | None = None,
                       metrics=("visqol", "mel_distance", "si_sdr")) -> Path:
    """Quality per bitrate: trained and untrained on held-out pieces, and trained on the ood split."""
    metrics = [m for m in metrics if any(r.get(m) is not None for r in rows)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    tables = [(rows, "trained (held-out pieces)", "o-"), (untrained, "untrained (full bitrate)", "x--")]
    if ood:
        tables.append((ood, "trained (unseen timbres)", "s-"))
    for ax, metric in zip(axes[0], metrics):
        for table, label, style in tables:
            pts = [(r["bitrate_kbps"], r[metric]) for r in table if r.get(metric) is not None]
            if pts:
                ax.plot(*np.array(pts).T, style, label=label)
        ax.set_xlabel("bitrate (kbps)")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    return _save(fig, path)
