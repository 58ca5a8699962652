"""The sweep's figure: measured loss against compute per model size, the fitted law, the
compute-optimal frontier, the held-out run and the recommended point; isoFLOP profiles per codec."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from components.common.atomic import atomic_path
from components.scaling.fit import ScalingLaw
from components.scaling.recommend import FLOPS_PER_PARAM_TOKEN, compute_optimal, isoflop_curve


def plot_scaling(path: str | os.PathLike, runs: list[dict], law: ScalingLaw, recommended: dict,
                 variant_laws: dict[int, ScalingLaw], K: int, budgets: list[float]) -> Path:
    """runs: rows with N, D, C, loss, role, size, num_codebooks; recommended: a Recommendation dict."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, iso) = plt.subplots(1, 2, figsize=(13, 4.8), dpi=110)
    main = [r for r in runs if r["num_codebooks"] == K]
    sizes = sorted({r["N"] for r in main})
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(sizes)))
    c_lo = min(r["C"] for r in main) / 2
    c_hi = max(max(r["C"] for r in main), recommended["flops"]) * 2
    for N, colour in zip(sizes, colours):
        pts = sorted((r for r in main if r["N"] == N), key=lambda r: r["C"])
        label = f"N = {N / 1e3:.0f} k ({pts[0]['size']})"
        for r in pts:
            marker = "*" if r["role"] == "holdout" else "o"
            ax.scatter(r["C"], r["loss"], color=colour, marker=marker, s=140 if marker == "*" else 30, zorder=3,
                       edgecolors="k" if marker == "*" else "none")
        C = np.geomspace(c_lo, c_hi, 100)
        ax.plot(C, law.loss(N, C / (FLOPS_PER_PARAM_TOKEN * N)), color=colour, lw=1, alpha=0.8, label=label)
    C = np.geomspace(c_lo, c_hi, 100)
    frontier = [compute_optimal(law, c).loss for c in C]
    ax.plot(C, frontier, "k--", lw=1.5, label="compute-optimal frontier (fit)")
    ax.scatter(recommended["flops"], recommended["loss"], marker="D", color="red", s=60, zorder=4,
               label=f"recommended at {recommended['flops']:.1e}: N={recommended['params'] / 1e3:.0f} k, "
                     f"D={recommended['tokens'] / 1e6:.1f} M frames")
    ax.scatter([], [], marker="*", color="grey", edgecolors="k", s=140, label="held-out run (not fitted)")
    ax.set_xscale("log")
    ax.set_xlabel("compute C = 6 N D (FLOPs, non-embedding)")
    ax.set_ylabel("valid loss (nats / code)")
    ax.set_title(f"L = {law.E:.2f} + {law.A:.3g}/N^{law.alpha:.2f} + {law.B:.3g}/D^{law.beta:.2f}")
    ax.legend(fontsize=7)

    styles = {K: "-", **{k: "--" for k in variant_laws}}
    laws = {K: law, **variant_laws}
    colours = plt.cm.plasma(np.linspace(0, 0.8, len(budgets)))
    for budget, colour in zip(budgets, colours):
        for k, fitted in laws.items():
            rec = compute_optimal(fitted, budget)
            N = np.geomspace(rec.params / 30, rec.params * 30, 80)
            # per-code losses of different codecs are not comparable: each curve relative to its own optimum
            iso.plot(N, isoflop_curve(fitted, budget, N) - rec.loss, styles[k], color=colour, lw=1.2,
                     label=f"C={budget:.0e}, K={k}")
            iso.scatter(rec.params, 0.0, color=colour, marker="o" if k == K else "x", zorder=3)
    iso.set_xscale("log")
    iso.set_xlabel("non-embedding parameters N (D = C / 6N)")
    iso.set_ylabel("loss above the budget's optimum (nats / code)")
    iso.set_title("isoFLOP profiles of the fit: solid K codebooks, dashed fewer")
    iso.set_ylim(-0.02, 0.5)
    iso.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
