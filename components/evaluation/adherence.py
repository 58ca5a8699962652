"""Prompt adherence read by the independent tagger: does it rank the prompted instrument above the others?

musicnn's MagnaTagATune vocabulary has tags for six of the corpus's instruments (the rest, e.g. clarinet, organ,
trumpet, have none: those prompts are left out and counted). An instrument's score is its strongest tag:

    piano -> piano          guitar -> guitar           harpsichord -> harpsichord
    flute -> flute          choir -> choir, choral     strings -> strings, violin, cello

    adherence(clip) = 1 - rank / (k - 1)   rank of the prompted instrument among the k instruments (0 = first)
    hit(clip)       = the prompted instrument is ranked first

Chance is 0.5 for adherence and 1 / k for hits. `paired(text, no_text)` compares two sets on the same prompts and
seeds (with text vs without, post-trained vs pretrained): the mean difference with a bootstrap interval over
prompts and a one-sided sign-flip permutation p-value ("the first set adheres better"). `shuffled_prompts` scores
a set against another prompt's instrument: adherence must fall to chance there, or the metric hears something
other than the prompt.
"""

from __future__ import annotations

import numpy as np

from components.common.stats import bootstrap_interval, wilson_interval
from components.evaluation.musicnn import MTT_TAGS

INSTRUMENT_TAGS: dict[str, tuple[str, ...]] = {
    "piano": ("piano",), "guitar": ("guitar",), "harpsichord": ("harpsichord",), "flute": ("flute",),
    "choir": ("choir", "choral"), "strings": ("strings", "violin", "cello"),
}
INSTRUMENTS = tuple(INSTRUMENT_TAGS)


def instrument_scores(tags: np.ndarray) -> np.ndarray:
    """[n, 50] tag posteriors -> [n, k] one score per taggable instrument (its strongest tag)."""
    tags = np.asarray(tags)
    return np.stack([tags[:, [MTT_TAGS.index(t) for t in INSTRUMENT_TAGS[i]]].max(1) for i in INSTRUMENTS], axis=1)


def taggable(instruments: list[str | None]) -> np.ndarray:
    return np.array([str(i).lower() in INSTRUMENT_TAGS for i in instruments])


def adherence(tags: np.ndarray, instruments: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """Per clip (adherence in [0, 1], hit in {0, 1}); nan where the instrument has no tag."""
    scores = instrument_scores(tags)
    k = len(INSTRUMENTS)
    adh, hit = np.full(len(scores), np.nan), np.full(len(scores), np.nan)
    for n, name in enumerate(instruments):
        name = str(name).lower()
        if name not in INSTRUMENT_TAGS:
            continue
        j = INSTRUMENTS.index(name)
        rank = int((scores[n] > scores[n, j]).sum())
        adh[n], hit[n] = 1.0 - rank / (k - 1), float(rank == 0)
    return adh, hit


def sign_flip_p(diff: np.ndarray, n_permutations: int = 20_000, seed: int = 0) -> float:
    """One-sided p-value of mean(diff) > 0 under random sign flips of the paired differences."""
    diff = np.asarray(diff, np.float64)
    if len(diff) == 0 or not np.any(diff):
        return 1.0
    rng = np.random.default_rng(seed)
    flips = rng.choice((-1.0, 1.0), size=(n_permutations, len(diff)))
    null = (flips * diff).mean(1)
    return float((1 + np.sum(null >= diff.mean() - 1e-12)) / (n_permutations + 1))


def summary(tags: np.ndarray, instruments: list[str | None], seed: int = 0) -> dict:
    adh, hit = adherence(tags, instruments)
    known = ~np.isnan(adh)
    n, k = int(known.sum()), int(hit[known].sum()) if known.any() else 0
    lo, hi = bootstrap_interval(adh[known], seed=seed) if n else (float("nan"), float("nan"))
    return {"n": n, "n_untaggable": int((~known).sum()), "adherence": float(adh[known].mean()) if n else float("nan"),
            "adherence_interval95": [lo, hi], "top1": k / n if n else float("nan"),
            "top1_interval95": list(wilson_interval(k, n)), "chance_adherence": 0.5, "chance_top1": 1 / len(INSTRUMENTS)}


def paired(first: np.ndarray, second: np.ndarray, instruments: list[str | None], seed: int = 0) -> dict:
    """first vs second on the same prompts and seeds: mean adherence difference (first - second)."""
    a, _ = adherence(first, instruments)
    b, _ = adherence(second, instruments)
    known = ~(np.isnan(a) | np.isnan(b))
    diff = a[known] - b[known]
    lo, hi = bootstrap_interval(diff, seed=seed) if len(diff) else (float("nan"), float("nan"))
    return {"n": int(known.sum()), "difference": float(diff.mean()) if len(diff) else float("nan"),
            "difference_interval95": [lo, hi], "p_first_better": sign_flip_p(diff, seed=seed),
            "p_first_worse": sign_flip_p(-diff, seed=seed)}


def per_instrument_accuracy(tags: np.ndarray, instruments: list[str | None]) -> dict[str, dict]:
    """How well the tagger hears real clips: top-1 among the taggable instruments, per instrument, with n."""
    _, hit = adherence(tags, instruments)
    scores = instrument_scores(tags)
    out = {}
    for name in INSTRUMENTS:
        rows = np.array([str(i).lower() == name for i in instruments])
        n, k = int(rows.sum()), int(np.nansum(hit[rows]))
        if n:
            said = [INSTRUMENTS[j] for j in scores[rows].argmax(1)]
            out[name] = {"n": n, "correct": k, "accuracy": k / n, "interval95": list(wilson_interval(k, n)),
                         "most_said": max(set(said), key=said.count)}
    return out


def shuffled_prompts(instruments: list[str | None], seed: int = 0) -> list[str | None]:
    """Each clip's instrument replaced by another clip's, never its own where another exists (a derangement of
    instruments, not only of positions)."""
    rng = np.random.default_rng(seed)
    names = [str(i).lower() if i is not None else None for i in instruments]
    out = []
    for name in names:
        others = [o for o in names if o != name]
        out.append(others[rng.integers(len(others))] if others else name)
    return out
