"""Human ratings for ORAQL: absolute scores and A/B choices, imported from a table (CSV or parquet).

    ratings   audio, rater, score, scale_min, scale_max [, piece, split]   e.g. clip.wav, r1, 4, 1, 5
    pairwise  audio_a, audio_b, rater, choice [, piece, split]             choice: a | b

`audio` paths are relative to the table's folder (or absolute). A table is read whole and checked
whole: every problem is reported as `file, row N: problem` (N counts data rows from 1) and if there
is any, nothing is imported. Problems: a missing column, an empty cell, a score that is not a
number or lies off its stated scale, a scale whose minimum is not below its maximum, audio that
does not exist, a duplicate (same audio and rater; same pair and rater), a pair of one clip with
itself, a choice other than a/b.

Per-rater normalisation (raters use a scale differently): each score is mapped to [0, 1] by its
scale, z-scored within its rater, and put back on the pooled mean and spread of all raters:

    v = mean_all + std_all * (u - mean_rater) / std_rater,   u = (score - min) / (max - min)

(a rater with fewer than 3 ratings or no spread keeps u). An audio file's label is the mean v of
its raters. Items without a `split` column are split by piece (else by file name) with a hash, so
the same piece always lands on the same side.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from components.common.errors import LyraError

RATING_COLUMNS = ("audio", "rater", "score", "scale_min", "scale_max")
PAIR_COLUMNS = ("audio_a", "audio_b", "rater", "choice")
SPLITS = ("train", "valid", "test")


class RatingsError(LyraError, ValueError):
    """A table that cannot be imported; `problems` lists every (file, row, problem)."""

    def __init__(self, path: Path, problems: list[tuple[int | None, str]]):
        self.path, self.problems = path, problems
        lines = [f"{path}, {'header' if row is None else f'row {row}'}: {problem}" for row, problem in problems[:50]]
        more = f"\n... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{path}: {len(problems)} problem(s), nothing imported:\n" + "\n".join(lines) + more)


@dataclasses.dataclass(frozen=True)
class RatedAudio:
    path: Path
    label: float            # on [0, 1] after per-rater normalisation
    n_ratings: int
    piece: str
    split: str


@dataclasses.dataclass(frozen=True)
class Preference:
    better: Path
    worse: Path
    rater: str
    split: str


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise RatingsError(path, [(None, "file not found")])
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:        # pandas/pyarrow raise many types on malformed files
        raise RatingsError(path, [(None, f"not a readable {'parquet' if path.suffix == '.parquet' else 'CSV'} table: {exc}")]) from None


def _columns_problem(df: pd.DataFrame, required: tuple[str, ...]) -> list[tuple[int | None, str]]:
    missing = [c for c in required if c not in df.columns]
    return [(None, f"missing column(s) {', '.join(missing)} (required: {', '.join(required)})")] if missing else []


def _cell(value) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()


def _number(value) -> float | None:
    try:
        x = float(_cell(value))
    except ValueError:
        return None
    return x if np.isfinite(x) else None


def split_of(key: str) -> str:
    """A stable 80/10/10 split from a piece (or file) name."""
    h = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % 10
    return "train" if h < 8 else ("valid" if h == 8 else "test")


def _where(row, audio: str, base: Path) -> tuple[str, str]:
    piece = _cell(row.get("piece")) or Path(audio).stem
    split = _cell(row.get("split")) or split_of(piece)
    return piece, split


def _audio(base: Path, name: str) -> Path:
    p = Path(name)
    return p if p.is_absolute() else base / p


def read_ratings(path: str | Path) -> list[RatedAudio]:
    """Validated, rater-normalised labels per audio file, or RatingsError with every problem."""
    path = Path(path)
    df = _read_table(path)
    problems = _columns_problem(df, RATING_COLUMNS)
    if problems:
        raise RatingsError(path, problems)
    rows, seen = [], {}
    for i, row in enumerate(df.to_dict("records"), start=1):
        empty = [c for c in RATING_COLUMNS if not _cell(row[c])]
        if empty:
            problems.append((i, f"empty {', '.join(empty)}"))
            continue
        score, lo, hi = _number(row["score"]), _number(row["scale_min"]), _number(row["scale_max"])
        if score is None or lo is None or hi is None:
            problems.append((i, "score, scale_min and scale_max must be numbers"))
            continue
        if lo >= hi:
            problems.append((i, f"scale_min {lo:g} is not below scale_max {hi:g}"))
            continue
        if not lo <= score <= hi:
            problems.append((i, f"score {score:g} is off its scale [{lo:g}, {hi:g}]"))
            continue
        audio, rater = _cell(row["audio"]), _cell(row["rater"])
        if not _audio(path.parent, audio).is_file():
            problems.append((i, f"unknown audio {audio!r} (no such file beside the table)"))
            continue
        if (audio, rater) in seen:
            problems.append((i, f"duplicate: rater {rater!r} already rated {audio!r} in row {seen[audio, rater]}"))
            continue
        piece, split = _where(row, audio, path.parent)
        if split not in SPLITS:
            problems.append((i, f"split {split!r} is not one of {', '.join(SPLITS)}"))
            continue
        seen[audio, rater] = i
        rows.append({"audio": audio, "rater": rater, "u": (score - lo) / (hi - lo), "piece": piece, "split": split})
    if problems:
        raise RatingsError(path, problems)
    if not rows:
        raise RatingsError(path, [(None, "no ratings")])
    table = pd.DataFrame(rows)
    table["v"] = normalise_per_rater(table)
    out = []
    for audio, g in table.groupby("audio", sort=True):
        out.append(RatedAudio(_audio(path.parent, audio), float(g["v"].mean()), len(g), str(g["piece"].iloc[0]),
                              str(g["split"].iloc[0])))
    return out


def normalise_per_rater(table: pd.DataFrame, min_ratings: int = 3) -> np.ndarray:
    """Column u (scores on [0, 1]) -> per-rater z-scores on the pooled mean/std, clipped to [0, 1]."""
    u = table["u"].to_numpy(dtype=float)
    mean_all, std_all = float(u.mean()), float(u.std())
    v = u.copy()
    for _, idx in table.groupby("rater").indices.items():
        r = u[idx]
        if len(r) >= min_ratings and r.std() > 1e-9:
            v[idx] = mean_all + std_all * (r - r.mean()) / r.std()
    return np.clip(v, 0.0, 1.0)


def read_pairwise(path: str | Path) -> list[Preference]:
    """Validated A/B choices (the preferred audio first), or RatingsError with every problem."""
    path = Path(path)
    df = _read_table(path)
    problems = _columns_problem(df, PAIR_COLUMNS)
    if problems:
        raise RatingsError(path, problems)
    out, seen = [], {}
    for i, row in enumerate(df.to_dict("records"), start=1):
        empty = [c for c in PAIR_COLUMNS if not _cell(row[c])]
        if empty:
            problems.append((i, f"empty {', '.join(empty)}"))
            continue
        a, b, rater, choice = (_cell(row[c]) for c in PAIR_COLUMNS)
        choice = choice.lower()
        if choice not in ("a", "b"):
            problems.append((i, f"choice {choice!r} must be 'a' or 'b'"))
            continue
        if a == b:
            problems.append((i, f"audio_a and audio_b are the same file {a!r}"))
            continue
        unknown = [x for x in (a, b) if not _audio(path.parent, x).is_file()]
        if unknown:
            problems.append((i, f"unknown audio {', '.join(map(repr, unknown))} (no such file beside the table)"))
            continue
        key = (*sorted((a, b)), rater)
        if key in seen:
            problems.append((i, f"duplicate: rater {rater!r} already compared {a!r} and {b!r} in row {seen[key]}"))
            continue
        piece, split = _where(row, a, path.parent)
        if split not in SPLITS:
            problems.append((i, f"split {split!r} is not one of {', '.join(SPLITS)}"))
            continue
        seen[key] = i
        better, worse = (a, b) if choice == "a" else (b, a)
        out.append(Preference(_audio(path.parent, better), _audio(path.parent, worse), rater, split))
    if problems:
        raise RatingsError(path, problems)
    if not out:
        raise RatingsError(path, [(None, "no choices")])
    return out
