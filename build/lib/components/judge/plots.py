"""The judge's confusion matrices on real held-out (test) music, one panel per head."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_confusions(path: Path, confusion: dict) -> Path:
    """confusion: head -> (class names, true labels, predicted labels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heads = list(confusion) or ["(no test clips)"]
    fig, axes = plt.subplots(1, len(heads), figsize=(5.2 * len(heads), 4.6), squeeze=False)
    for ax, head in zip(axes[0], heads):
        if head not in confusion:
            ax.axis("off")
            continue
        names, truth, pred = confusion[head]
        m = np.zeros((len(names), len(names)), dtype=int)
        np.add.at(m, (truth, pred), 1)
        ax.imshow(m, cmap="Blues")
        for (i, j), v in np.ndenumerate(m):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xlabel("judge says")
        ax.set_ylabel("true")
        ax.set_title(f"{head}: {np.mean(truth == pred):.2f} on {len(truth)} test clips")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
