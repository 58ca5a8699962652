"""How well ORAQL's scores agree with held-out labels, with bootstrap 95 % intervals.

    per clip     Pearson / Spearman of score vs label over the items
    per system   the same over conditions (kind@strength, lyra@checkpoint, real): mean score vs mean label
    pairwise     share of item pairs whose labels differ by >= margin that the scores order the same way
    held-out     Spearman over the items of the one damage kind never trained or selected on

Intervals resample *source clips* (a clip and all its versions move together; a generation moves
with its prompt's clip), since versions of one clip are not independent draws.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats


def _corr(kind: str, x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float((stats.spearmanr if kind == "spearman" else stats.pearsonr)(x, y)[0])


def per_clip(df: pd.DataFrame, kind: str) -> float:
    return _corr(kind, df["score"].to_numpy(), df["label"].to_numpy())


def per_system(df: pd.DataFrame, kind: str) -> float:
    means = df.groupby("condition")[["score", "label"]].mean()
    return _corr(kind, means["score"].to_numpy(), means["label"].to_numpy())


def pairwise_accuracy(df: pd.DataFrame, margin: float) -> float:
    s, y = df["score"].to_numpy(), df["label"].to_numpy()
    dy = y[:, None] - y[None, :]
    ranked = dy >= margin                                   # i clearly better than j
    if not ranked.any():
        return float("nan")
    ds = s[:, None] - s[None, :]
    return float((ds[ranked] > 0).mean())


def bootstrap_interval(df: pd.DataFrame, metric: Callable[[pd.DataFrame], float], n: int, seed: int,
                       cluster: str = "cluster") -> list[float]:
    """95 % percentile interval of `metric` over resamples of the clusters."""
    if n <= 0 or df.empty:
        return [float("nan"), float("nan")]
    groups = [g.index.to_numpy() for _, g in df.groupby(cluster, sort=True)]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        pick = rng.integers(0, len(groups), len(groups))
        values.append(metric(df.loc[np.concatenate([groups[i] for i in pick])].reset_index(drop=True)))
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return [float("nan"), float("nan")]
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]


def with_interval(df: pd.DataFrame, metric, n_boot: int, seed: int) -> dict:
    return {"value": metric(df), "ci95": bootstrap_interval(df, metric, n_boot, seed)}


def agreement(items: pd.DataFrame, scores: np.ndarray, *, held_out_type: str, margin: float, n_boot: int,
              seed: int = 0, head: str = "overall") -> dict:
    """All agreement figures of `scores` (one per row of `items`) with the items' `head` label."""
    df = pd.DataFrame({"score": np.asarray(scores, dtype=float), "label": items[head].to_numpy(dtype=float),
                       "condition": items["condition"].to_numpy(), "kind": items["kind"].to_numpy(),
                       "cluster": items["item_id"].str.split("|").str[0].to_numpy()})
    df = df[np.isfinite(df["label"])].reset_index(drop=True)
    held = df[df["kind"] == held_out_type].reset_index(drop=True)
    out = {
        "n_items": len(df), "n_clusters": int(df["cluster"].nunique()), "n_systems": int(df["condition"].nunique()),
        "pearson_clip": with_interval(df, lambda d: per_clip(d, "pearson"), n_boot, seed),
        "spearman_clip": with_interval(df, lambda d: per_clip(d, "spearman"), n_boot, seed),
        "pearson_system": with_interval(df, lambda d: per_system(d, "pearson"), n_boot, seed),
        "spearman_system": with_interval(df, lambda d: per_system(d, "spearman"), n_boot, seed),
        "pairwise": with_interval(df, lambda d: pairwise_accuracy(d, margin), n_boot, seed),
        "held_out_type": held_out_type, "held_out_n": len(held),
        "held_out_spearman": with_interval(held, lambda d: per_clip(d, "spearman"), n_boot, seed),
        "per_kind_spearman": {k: per_clip(g, "spearman") for k, g in df.groupby("kind", sort=True)},
        "per_kind_mean_score": {k: float(g["score"].mean()) for k, g in df.groupby("kind", sort=True)},
    }
    return out


def summary_line(report: dict) -> str:
    def f(key):
        v = report[key]
        return f"{v['value']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]"

    return (f"per clip Spearman {f('spearman_clip')}, Pearson {f('pearson_clip')}; per system Spearman "
            f"{f('spearman_system')}; pairwise {f('pairwise')}; held-out {report['held_out_type']} Spearman "
            f"{f('held_out_spearman')} (n={report['n_items']} items, {report['n_clusters']} clips, "
            f"{report['n_systems']} systems)")


def gate_decisions(metrics: dict, cfg) -> dict[str, bool]:
    """The `oraql` asset's blocking check, by rule, from the stage's metrics and its config's targets.
    Every figure is on held-out (test) pieces; the untrained rule asks for the trained model's
    held-out-type interval to lie wholly above what the same network scores untrained."""
    def at_least(key, target):
        value = metrics.get(key)
        return value is not None and np.isfinite(value) and value >= target

    low = (metrics.get("held_out_spearman_ci95") or [float("nan")])[0]
    untrained = metrics.get("untrained_held_out_spearman")
    return {
        "spearman_clip": at_least("spearman_clip", cfg.gate_spearman_clip),
        "spearman_system": at_least("spearman_system", cfg.gate_spearman_system),
        "pairwise_accuracy": at_least("pairwise_accuracy", cfg.gate_pairwise),
        "held_out_type": at_least("held_out_spearman", cfg.gate_held_out_spearman),
        "held_out_above_untrained": bool(np.isfinite(low) and untrained is not None and low > untrained),
    }
