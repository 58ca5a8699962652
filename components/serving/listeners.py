"""What listeners' judgements say: does a candidate beat the holder, does best-of-n get liked more, and the
tables ORAQL imports.

    preference(judgements, candidate, holder)   wins / n, exact one-sided binomial lower bound (Clopper-Pearson)
                                                and p-value against 0.5: the `listeners_prefer` gate
    liked_by_best_of(judgements)                P(rating >= 4) per version and best-of-n arm with Wilson
                                                intervals, and each arm's win rate against other best-of counts
    liked_ratio(arms)                           P(liked | best-of-n) / P(liked | best-of-1), Katz interval:
                                                "best-of-n doubles the likelihood of being liked", measured
    export_tables(judgements, audio_dir, out)   pairwise.csv + ratings.csv (+ the audio) in the layout
                                                components/oraql/ratings.py imports

Only pairs of the two versions at the same best-of count towards a preference: best-of-8 of a version
against best-of-1 of another would measure the selection, not the model.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import shutil
from pathlib import Path

from components.common.atomic import atomic_write_text

LIKED = 4            # a rating of 4 or 5 of 5 is "liked"


@dataclasses.dataclass(frozen=True)
class Preference:
    candidate: str
    holder: str
    wins: int            # judgements that chose the candidate
    n: int               # judgements of pairs candidate vs holder (same best-of)
    share: float | None
    lower: float | None  # one-sided lower confidence bound of P(candidate preferred)
    p_value: float | None   # one-sided exact binomial test of P <= 0.5
    confidence: float

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def preference(judgements: list[dict], candidate: str, holder: str, confidence: float = 0.95) -> Preference:
    from scipy import stats

    wins = n = 0
    for j in judgements:
        versions = {j["version_a"], j["version_b"]}
        if versions != {candidate, holder} or j["best_of_a"] != j["best_of_b"]:
            continue
        n += 1
        wins += j[f"version_{j['choice']}"] == candidate
    if n == 0:
        return Preference(candidate, holder, 0, 0, None, None, None, confidence)
    lower = 0.0 if wins == 0 else float(stats.beta.ppf(1 - confidence, wins, n - wins + 1))
    p = float(stats.binomtest(wins, n, 0.5, alternative="greater").pvalue)
    return Preference(candidate, holder, wins, n, wins / n, lower, p, confidence)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float | None, float | None]:
    """The 95 % Wilson score interval of k successes in n (None, None without any)."""
    if n == 0:
        return (None, None)
    p = k / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
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
    """The write-up's claim as a measurement: P(liked | best-of-n) / P(liked | best-of-1) per version, with a
    95 % Katz (log) interval; None where either arm has no liked rating yet."""
    import math

    ones = {a["version"]: a for a in arms if a["best_of"] == 1}
    out = []
    for a in arms:
        base = ones.get(a["version"])
        if a["best_of"] == 1 or base is None:
            continue
        x1, n1, x2, n2 = base["liked"], base["rated"], a["liked"], a["rated"]
        if min(x1, x2) == 0:
            out.append({"version": a["version"], "best_of": a["best_of"], "ratio": None, "ci95": [None, None],
                        "n": [n1, n2]})
            continue
        ratio = (x2 / n2) / (x1 / n1)
        se = math.sqrt(1 / x1 - 1 / n1 + 1 / x2 - 1 / n2)
        out.append({"version": a["version"], "best_of": a["best_of"], "ratio": ratio,
                    "ci95": [ratio * math.exp(-1.96 * se), ratio * math.exp(1.96 * se)], "n": [n1, n2]})
    return out


def export_tables(judgements: list[dict], audio_dir: Path, out: Path) -> dict:
    """The judgements as ORAQL's import tables in `out` (pairwise.csv, ratings.csv, audio/), each clip's
    `piece` its pair (both sides of a pair share prompt and seed, so they stay in one split)."""
    audio_out = out / "audio"
    audio_out.mkdir(parents=True, exist_ok=True)
    pairs, ratings = [], []
    for j in judgements:
        names = {}
        for side in "ab":
            name = j[f"audio_{side}"]
            if not (audio_out / name).is_file():
                shutil.copy2(Path(audio_dir) / name, audio_out / name)
            names[side] = f"audio/{name}"
            if j[f"rating_{side}"] is not None:
                ratings.append({"audio": names[side], "rater": j["listener"], "score": j[f"rating_{side}"],
                                "scale_min": 1, "scale_max": 5, "piece": j["pair_id"]})
        pairs.append({"audio_a": names["a"], "audio_b": names["b"], "rater": j["listener"], "choice": j["choice"],
                      "piece": j["pair_id"]})
    written = {}
    for name, rows, columns in (("pairwise.csv", pairs, ("audio_a", "audio_b", "rater", "choice", "piece")),
                                ("ratings.csv", ratings, ("audio", "rater", "score", "scale_min", "scale_max", "piece"))):
        if rows:
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
            atomic_write_text(out / name, text.getvalue())
            written[name] = len(rows)
    return written
