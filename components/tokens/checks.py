"""What must hold for a token dataset, used by the stage and by the Dagster asset checks."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from components.common.stage import CheckOutcome
from components.tokens.dataset import TokenDataset


def every_clip_in_exactly_one_shard(curated_clip_ids: Iterable[str], index: pd.DataFrame) -> CheckOutcome:
    expected = pd.Series(list(curated_clip_ids))
    counts = index["clip_id"].value_counts()
    missing = sorted(set(expected) - set(counts.index))
    duplicated = sorted(counts[counts > 1].index)
    unexpected = sorted(set(counts.index) - set(expected))
    passed = not (missing or duplicated or unexpected)
    return CheckOutcome(passed, "every curated clip is in exactly one shard", {
        "curated_clips": len(expected), "indexed_clips": int(len(index)), "missing": len(missing),
        "duplicated": len(duplicated), "unexpected": len(unexpected),
        "examples": ", ".join((missing + duplicated + unexpected)[:5]),
    })


def codes_in_range(ds: TokenDataset) -> CheckOutcome:
    lo, hi = np.inf, -np.inf
    for shard in sorted(ds.index["shard"].unique()):
        codes = ds.shard(int(shard))
        if codes.size:
            lo, hi = min(lo, int(codes.min())), max(hi, int(codes.max()))
    passed = bool(lo >= 0 and hi < ds.codebook_size) if np.isfinite(lo) else False
    return CheckOutcome(passed, f"codes within [0, {ds.codebook_size})", {"min_code": float(lo), "max_code": float(hi)})


def every_clip_in_exactly_one_shard_check(repo: Path, cfg) -> CheckOutcome:
    """The declared check (components/tokens/declaration.py) on data/curated and data/tokens."""
    manifest = pd.read_parquet(repo / "data" / "curated" / "manifest.parquet", columns=["clip_id"])
    return every_clip_in_exactly_one_shard(manifest["clip_id"], pd.read_parquet(repo / "data" / "tokens" / "index.parquet",
                                                                                columns=["clip_id"]))


def codes_in_range_check(repo: Path, cfg) -> CheckOutcome:
    return codes_in_range(TokenDataset(repo / "data" / "tokens", split=None))


def codebook_statistics(counts: np.ndarray) -> dict:
    """Per codebook: perplexity (2^entropy) and the fraction of entries ever used."""
    stats = {}
    for k, row in enumerate(counts):
        p = row / max(row.sum(), 1)
        nz = p[p > 0]
        stats[f"codebook_{k}_perplexity"] = float(np.exp(-(nz * np.log(nz)).sum())) if nz.size else 0.0
        stats[f"codebook_{k}_usage"] = float((row > 0).mean())
    return stats


def plot_codebook_histograms(counts: np.ndarray, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from components.common.atomic import atomic_path

    k = counts.shape[0]
    fig, axes = plt.subplots(k, 1, figsize=(8, 1.6 * k), sharex=True, squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        ranked = np.sort(counts[i])[::-1]
        ax.bar(np.arange(len(ranked)), ranked, width=1.0)
        ax.set_ylabel(f"q{i}")
        ax.set_yscale("log")
    axes[-1, 0].set_xlabel("codebook entries, most used first")
    fig.suptitle("token frequency per codebook")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
    return path
