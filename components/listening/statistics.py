"""What listeners' judgements say.

    preference(judgements, candidate, holder)   wins / n over blind pairs of the two versions at equal best-of,
                                                the exact one-sided lower bound (Clopper-Pearson) and p-value
                                                against 0.5, and how many distinct listeners: `listeners_prefer`
    liked_by_best_of(judgements)                P(rating >= 4) per version and best-of-n with Wilson intervals,
                                                and each arm's win rate against other best-of counts
    liked_ratio(arms)                           P(liked | best-of-n) / P(liked | best-of-1) with a Katz interval:
                                                "best-of-n doubles the likelihood of being liked", measured

What the intervals assume: judgements independent of each other. They are not quite: a listener judges
many pairs and a pair is played to many listeners, so the intervals are narrower than a listener- or
pair-clustered analysis would give; and a gate re-checked after every vote until it passes has more than
its nominal 5 % false-pass rate. The gate's `min_judgements` and `min_listeners` are there to be fixed
in advance and read once.
"""

from __future__ import annotations

import dataclasses
import math

LIKED = 4            # a rating of 4 or 5 of 5 is "liked"


@dataclasses.dataclass(frozen=True)
class Preference:
    candidate: str
    holder: str
    wins: int            # judgements that chose the candidate
    n: int               # judgements of pairs candidate vs holder (same best-of)
    listeners: int       # distinct listeners among them
    share: float | None
    lower: float | None  # one-sided lower confidence bound of P(candidate preferred)
    p_value: float | None   # one-sided exact binomial test of P <= 0.5
    confidence: float

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def preference(judgements: list[dict], candidate: str, holder: str, confidence: float = 0.95) -> Preference:
    from scipy import stats

    wins = n = 0
    listeners = set()
    for j in judgements:
        if j["version_a"] == j["version_b"] or {j["version_a"], j["version_b"]} != {candidate, holder}:
            continue
        if j["best_of_a"] != j["best_of_b"]:
            continue
        n += 1
        wins += j[f"version_{j['choice']}"] == candidate
        listeners.add(j["listener"])
    if n == 0:
        return Preference(candidate, holder, 0, 0, 0, None, None, None, confidence)
    lower = 0.0 if wins == 0 else float(stats.beta.ppf(1 - confidence, wins, n - wins + 1))
    p = float(stats.binomtest(wins, n, 0.5, alternative="greater").pvalue)
    return Preference(candidate, holder, wins, n, len(listeners), wins / n, lower, p, confidence)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float | None, float | None]:
    """The 95 % Wilson score interval of k successes in n (None, None without any)."""
    if n == 0:
        return (None, None)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def liked_by_best_of(judgements: list[dict], version: str | None = None) -> list[dict]:
    """Per version and best-of-n arm (of `version` only, if given): ratings, P(liked) with a 95 % Wilson
    interval, and how often the arm won the pairs against another best-of count of the same version."""
    arms: dict[tuple[str, int], dict] = {}
    for j in judgements:
        for side in "ab":
            if version is not None and j[f"version_{side}"] != version:
                continue
            key = (j[f"version_{side}"], int(j[f"best_of_{side}"]))
            arm = arms.setdefault(key, {"rated": 0, "liked": 0, "played": 0, "won": 0})
            if j["best_of_a"] != j["best_of_b"] and j["version_a"] == j["version_b"]:
                arm["played"] += 1
                arm["won"] += j["choice"] == side
            rating = j[f"rating_{side}"]
            if rating is not None:
                arm["rated"] += 1
                arm["liked"] += rating >= LIKED
    out = []
    for (name, n_best), a in sorted(arms.items()):
        out.append({"version": name, "best_of": n_best, "rated": a["rated"], "liked": a["liked"],
                    "p_liked": a["liked"] / a["rated"] if a["rated"] else None,
                    "p_liked_ci95": list(wilson(a["liked"], a["rated"])), "pairs_played": a["played"],
                    "win_rate": a["won"] / a["played"] if a["played"] else None,
                    "win_rate_ci95": list(wilson(a["won"], a["played"]))})
    return out


def liked_ratio(arms: list[dict]) -> list[dict]:
    """P(liked | best-of-n) / P(liked | best-of-1) per version, with a 95 % Katz (log) interval; 0.5 is added
    to every count when one is 0 or all (Haldane), so 3 of 3 against 5 of 5 gives a wide interval, not a point.
    None while best-of-1 has no liked rating (the ratio is unbounded)."""
    ones = {a["version"]: a for a in arms if a["best_of"] == 1}
    out = []
    for a in arms:
        base = ones.get(a["version"])
        if a["best_of"] == 1 or base is None or not base["rated"] or not a["rated"]:
            continue
        x1, n1, x2, n2 = base["liked"], base["rated"], a["liked"], a["rated"]
        row = {"version": a["version"], "best_of": a["best_of"], "n": [n1, n2]}
        if x1 == 0:
            out.append({**row, "ratio": None, "ci95": [None, None]})
            continue
        ratio = (x2 / n2) / (x1 / n1)
        if min(x1, x2) == 0 or x1 == n1 or x2 == n2:
            x1, n1, x2, n2 = x1 + 0.5, n1 + 1.0, x2 + 0.5, n2 + 1.0
        se = math.sqrt(1 / x1 - 1 / n1 + 1 / x2 - 1 / n2)
        centre = (x2 / n2) / (x1 / n1)
        out.append({**row, "ratio": ratio, "ci95": [centre * math.exp(-1.96 * se), centre * math.exp(1.96 * se)]})
    return out
