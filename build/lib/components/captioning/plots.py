"""One figure for the Dagster UI: audio tempo vs metadata tempo, and how estimated keys relate
to the metadata keys."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from components.captioning.keys import MIREX_WEIGHTS, key_relation, parse_key


def plot_agreement(table: pd.DataFrame, path: Path, *, tolerance: float = 0.08) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (ax_t, ax_k) = plt.subplots(1, 2, figsize=(10, 4))
    ref = pd.to_numeric(table["tempo_bpm_beats"], errors="coerce").to_numpy(dtype=float)
    est = pd.to_numeric(table["tempo_bpm_audio"], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(ref) & np.isfinite(est)
    if ok.any():
        lo, hi = 0.7 * min(ref[ok].min(), est[ok].min()), 1.4 * max(ref[ok].max(), est[ok].max())
        line = np.array([lo, hi])
        for factor, style in ((1.0, "-"), (0.5, ":"), (2.0, ":")):
            ax_t.fill_between(line, factor * line * (1 - tolerance), factor * line * (1 + tolerance),
                              color="tab:green", alpha=0.25 if factor == 1 else 0.1, linestyle=style)
        ax_t.scatter(ref[ok], est[ok], s=12)
        ax_t.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi))
        ticks = [t for t in (30, 45, 60, 90, 120, 180, 240, 360) if lo <= t <= hi]
        for axis in (ax_t.xaxis, ax_t.yaxis):
            axis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
            axis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            axis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax_t.set(xlabel="metadata tempo (beats per minute)", ylabel="audio tempo (bpm)",
             title=f"tempo ({int(ok.sum())} clips; band = ±{tolerance:.0%}, ×½, ×2)")

    relations = Counter()
    for k, m, ka, ma in zip(table["key"], table["mode"], table["key_audio"], table["mode_audio"]):
        r, e = parse_key(k, m), parse_key(ka, ma)
        if r is not None and e is not None:
            relations[key_relation(e, r)] += 1
    names = list(MIREX_WEIGHTS)
    ax_k.bar(names, [relations[n] for n in names], color="tab:blue")
    ax_k.set(ylabel="clips", title=f"audio key vs metadata key ({sum(relations.values())} clips)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=80)
    plt.close(fig)
