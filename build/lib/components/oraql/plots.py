"""ORAQL's agreement plot: score vs label per test item (by kind) and per system."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def plot_agreement(path: Path, items: pd.DataFrame, held_out_type: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    known = items[np.isfinite(items["overall"])]
    cmap = plt.get_cmap("tab20")
    for i, (kind, g) in enumerate(known.groupby("kind", sort=True)):
        marker = "x" if kind == held_out_type else "o"
        axes[0].scatter(g["overall"], g["score_overall"], s=10, marker=marker, color=cmap(i % 20),
                        label=kind + (" (held out)" if kind == held_out_type else ""))
    axes[0].plot([0, 1], [0, 1], color="grey", lw=0.8)
    axes[0].set(xlabel="label (overall)", ylabel="ORAQL overall", title="test items", xlim=(0, 1.02), ylim=(0, 1.02))
    axes[0].legend(fontsize=6, ncol=2)
    systems = known.groupby("condition")[["overall", "score_overall"]].mean()
    axes[1].scatter(systems["overall"], systems["score_overall"], s=14)
    for name, row in systems.iterrows():
        axes[1].annotate(name, (row["overall"], row["score_overall"]), fontsize=5)
    axes[1].plot([0, 1], [0, 1], color="grey", lw=0.8)
    axes[1].set(xlabel="mean label", ylabel="mean ORAQL", title="test systems (kind@strength)", xlim=(0, 1.02),
                ylim=(0, 1.02))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
