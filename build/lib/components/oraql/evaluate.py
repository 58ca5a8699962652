"""How well ORAQL's scores agree with held-out labels, with bootstrap 95 % intervals.

    per clip     Pearson / Spearman of score vs label over the items
    per system   the same over conditions (kind@strength, lyra@checkpoint, real): mean score vs mean label
    pairwise     share of item pairs whose labels differ by >= margin that the scores order the same way
    held-out     Spearman over the items of the one damage kind never trained or selected on

Intervals resample *source clips* (a clip, its crops and all their versions move together; a generation
moves with its prompt's clip), since versions of one clip are not independent draws.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def _corr(kind: str, x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    if kind == "spearman":
        x, y = stats.rankdata(x), stats.rankdata(y)
    return float(np.corrcoef(x, y)[0, 1])


def per_clip(s: np.ndarray, y: np.ndarray, c: np.ndarray, kind: str) -> float:
    return _corr(kind, s, y)


def per_system(s: np.ndarray, y: np.ndarray, c: np.ndarray, kind: str) -> float:
    """Correlation of per-condition means (c: condition codes 0..k-1)."""
    n = np.bincount(c)
    present = n > 0
    return _corr(kind, (np.bincount(c, s) / np.maximum(n, 1))[present], (np.bincount(c, y) / np.maximum(n, 1))[present])


def pairwise_accuracy(s: np.ndarray, y: np.ndarray, margin: float) -> float:
    """Share of pairs with label(i) - label(j) >= margin where score(i) > score(j)."""
    ranked = (y[:, None] - y[None, :]) >= margin
    if not ranked.any():
        return float("nan")
    return float(((s[:, None] - s[None, :])[ranked] > 0).mean())


def bootstrap_interval(groups: list[np.ndarray], metric, n: int, seed: int) -> list[float]:
    """95 % percentile interval of metric(item indices) over resamples of the groups (source clips)."""
    if n <= 0 or not groups:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    values = np.array([metric(np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))]))
                       for _ in range(n)], dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return [float("nan"), float("nan")]
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]


def agreement(items: pd.DataFrame, scores: np.ndarray, *, held_out_type: str, margin: float, n_boot: int,
              seed: int = 0, head: str = "overall") -> dict:
    """All agreement figures of `scores` (one per row of `items`) with the items' `head` label."""
    label = items[head].to_numpy(dtype=float)
    ok = np.isfinite(label)
    s, y = np.asarray(scores, dtype=float)[ok], label[ok]
    condition = items["condition"].to_numpy()[ok]
    kind = items["kind"].to_numpy()[ok]
    cluster = items["item_id"].str.split("|").str[0].str.split("#").str[0].to_numpy()[ok]   # crops of a clip: one cluster
    c = pd.factorize(condition)[0]
    groups = [np.flatnonzero(cluster == g) for g in np.unique(cluster)]
    held = kind == held_out_type
    held_groups = [g[held[g]] for g in groups if held[g].any()]

    def stat(fn, groups_):
        return {"value": fn(np.concatenate(groups_)) if groups_ else float("nan"),
                "ci95": bootstrap_interval(groups_, fn, n_boot, seed)}

    return {
        "n_items": int(ok.sum()), "n_clusters": len(groups), "n_systems": int(len(np.unique(condition))),
        "pearson_clip": stat(lambda i: per_clip(s[i], y[i], c[i], "pearson"), groups),
        "spearman_clip": stat(lambda i: per_clip(s[i], y[i], c[i], "spearman"), groups),
        "pearson_system": stat(lambda i: per_system(s[i], y[i], c[i], "pearson"), groups),
        "spearman_system": stat(lambda i: per_system(s[i], y[i], c[i], "spearman"), groups),
        "pairwise": stat(lambda i: pairwise_accuracy(s[i], y[i], margin), groups),
        "held_out_type": held_out_type, "held_out_n": int(held.sum()),
        "held_out_spearman": stat(lambda i: per_clip(s[i], y[i], c[i], "spearman"), held_groups),
        "per_kind_spearman": {k: _corr("spearman", s[kind == k], y[kind == k]) for k in np.unique(kind)},
        "per_kind_mean_score": {k: float(s[kind == k].mean()) for k in np.unique(kind)},
    }


def summary_line(report: dict) -> str:
    def f(key):
        v = report[key]
        return f"{v['value']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]"

    return (f"per clip Spearman {f('spearman_clip')}, Pearson {f('pearson_clip')}; per system Spearman "
            f"{f('spearman_system')}; pairwise {f('pairwise')}; held-out {report['held_out_type']} Spearman "
            f"{f('held_out_spearman')} (n={report['n_items']} items, {report['n_clusters']} clips, "
            f"{report['n_systems']} systems)")


def gate_decisions(metrics: dict, cfg) -> dict[str, bool]:
    """The blocking rules of the `oraql` asset (`gate_beats_untrained`), on held-out (test) pieces: the lower
    end of the per-clip Spearman interval lies above what the same network scores untrained, the pairwise
    interval above chance (0.5), and on the damage type never trained on the trained model ranks better
    than the untrained one (point estimates: on ~10-20 test clips that interval spans +-0.4)."""
    if not cfg.gate_beats_untrained:
        return {}

    def above(key, floor):
        low = (metrics.get(f"{key}_ci95") or [float("nan")])[0]
        return bool(low is not None and np.isfinite(low) and floor is not None and np.isfinite(floor) and low > floor)

    return {
        "per_clip_beats_untrained": above("spearman_clip", metrics.get("untrained_spearman_clip")),
        "held_out_type_beats_untrained": bool(np.nan_to_num(metrics.get("held_out_spearman", np.nan), nan=-2.0)
                                              > np.nan_to_num(metrics.get("untrained_held_out_spearman", np.nan), nan=2.0)),
        "pairwise_beats_chance": above("pairwise_accuracy", 0.5),
    }


def target_decisions(metrics: dict, cfg) -> dict[str, bool]:
    """The issue's targets (a warning check: reported on every materialization, not blocking)."""
    def at_least(key, target):
        value = metrics.get(key)
        return value is not None and bool(np.isfinite(value)) and value >= target

    return {
        "spearman_clip": at_least("spearman_clip", cfg.target_spearman_clip),
        "spearman_system": at_least("spearman_system", cfg.target_spearman_system),
        "pairwise_accuracy": at_least("pairwise_accuracy", cfg.target_pairwise),
        "held_out_type": at_least("held_out_spearman", cfg.target_held_out_spearman),
    }
