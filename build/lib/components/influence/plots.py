"""Influence's figures: the bottleneck sweep (influence and copy risk against bits per second) and training."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from components.common.atomic import atomic_path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_sweep(path: str | os.PathLike, settings: dict, targets: dict, baseline: float | None = None) -> Path:
    """settings: n_codebooks -> {bits_per_second, influence{index, ci95}, two_choice, copying{generated}};
    baseline: the influence index of generations without the reference (same seeds)."""
    plt = _plt()
    qs = sorted(settings, key=int)
    bits = [settings[q]["bits_per_second"] for q in qs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    idx = np.array([settings[q]["influence"]["index"] for q in qs])
    ci = np.array([settings[q]["influence"]["ci95"] for q in qs])
    left.errorbar(bits, idx, yerr=[idx - ci[:, 0], ci[:, 1] - idx], fmt="o-", capsize=3, label="influence index I (test)")
    left.plot(bits, [settings[q]["two_choice"]["accuracy"] for q in qs], "s--", label="two-choice accuracy")
    left.axhline(targets["influence"], color="grey", ls=":", lw=1, label=f"target I >= {targets['influence']}")
    if baseline is not None and np.isfinite(baseline):
        left.axhline(baseline, color="red", ls="--", lw=1, label=f"I without the reference ({baseline:.2f})")
    left.axhline(targets["two_choice"], color="orange", ls=":", lw=1, label=f"target two-choice >= {targets['two_choice']}")
    for b, q in zip(bits, qs):
        left.annotate(f"{q} cb", (b, idx[qs.index(q)]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    left.set_xlabel("bottleneck bits per second")
    left.set_title("influence vs bits/s")
    left.legend(fontsize=7)
    left.grid(alpha=0.3)
    if all("copying" in settings[q] for q in qs):
        runs = [settings[q]["copying"]["generated"]["run_seconds_p99"] for q in qs]
        flagged = [settings[q]["copying"]["generated"]["flagged"] for q in qs]
        mel = [settings[q]["copying"]["generated"]["mel_xcorr_mean"] for q in qs]
        right.plot(bits, runs, "o-", label="p99 longest shared codebook-0 run (s)")
        right.plot(bits, flagged, "s--", label="share flagged as copies")
        right.plot(bits, mel, "^:", label="mean mel cross-correlation")
        right.axhline(targets["run"], color="grey", ls=":", lw=1, label=f"target run < {targets['run']} s")
    right.set_xlabel("bottleneck bits per second")
    right.set_title("copy risk vs bits/s")
    right.legend(fontsize=7)
    right.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


def plot_training(path: str | os.PathLike, history: dict, evaluator_history: dict) -> Path:
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5), dpi=110)
    steps, loss = np.array(history["step"]), np.array(history["loss"])
    if len(loss):
        w = max(1, len(loss) // 20)
        left.plot(steps, loss, lw=0.6, alpha=0.4)
        left.plot(steps[w - 1:], np.convolve(loss, np.ones(w) / w, mode="valid"), lw=1.4, label=f"CE (mean of {w})")
    left.set_xlabel("LoRA + conditioner step")
    left.set_ylabel("next-code cross-entropy")
    left.legend(fontsize=7)
    left.grid(alpha=0.3)
    right.plot(evaluator_history["step"], evaluator_history["loss"], lw=0.8, label="InfoNCE (train)")
    twin = right.twinx()
    twin.plot(evaluator_history["valid_step"], evaluator_history["valid"], "o-", color="green", label="valid retrieval")
    right.set_xlabel("evaluator step")
    right.legend(fontsize=7, loc="upper left")
    twin.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
