"""Musical keys: parsing metadata spellings, Krumhansl–Schmuckler estimation from chroma, and
the MIREX weighted key score.

librosa has no key estimator. The Krumhansl–Schmuckler method correlates a clip's pitch-class
distribution (chroma summed over time) with a key profile rotated to each of the 24 keys and
picks the best; the profiles differ in where their weights come from (probe-tone ratings,
textbook excerpts, folk-song corpora). The weights below are the ones music21 uses.

    chroma [12, frames] --sum over frames--> pcp [12] --corr with 24 rotated profiles--> [24] -> argmax
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

PITCH_CLASSES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
MODES = ("major", "minor")
# conventional spelling of each tonic (the key signature with fewer accidentals)
MAJOR_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")

# (major, minor) weights per pitch class above the tonic
KEY_PROFILES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    # Krumhansl & Kessler (1982), probe-tone ratings
    "krumhansl": ((6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
                  (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)),
    # Temperley (2007), Kostka–Payne textbook excerpts
    "temperley": ((0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400),
                  (0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330)),
    # Aarden (2003), Essen folk-song collection
    "aarden": ((17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248, 22.062, 0.145624, 8.15494,
                0.232998, 4.95122),
               (18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494, 18.6161, 4.56621, 1.93186,
                7.37619, 1.75623)),
    # Bellman (2005) / Budge (1943), chord frequencies in classical repertoire
    "bellman": ((16.8, 0.86, 12.95, 1.41, 13.49, 11.93, 1.25, 20.28, 1.8, 8.04, 0.62, 10.57),
                (18.16, 0.69, 12.99, 13.34, 1.07, 11.15, 1.38, 21.07, 7.49, 1.53, 0.92, 10.21)),
}


@dataclasses.dataclass(frozen=True, order=True)
class Key:
    tonic: int          # pitch class 0..11, C = 0
    mode: str           # "major" | "minor"

    def __post_init__(self):
        if not 0 <= self.tonic < 12 or self.mode not in MODES:
            raise ValueError(f"invalid key ({self.tonic}, {self.mode!r})")

    @property
    def tonic_name(self) -> str:
        return (MAJOR_NAMES if self.mode == "major" else MINOR_NAMES)[self.tonic]

    @property
    def name(self) -> str:
        return f"{self.tonic_name} {self.mode}"

    def __str__(self) -> str:
        return self.name

    # --- neighbours, as MIREX defines them
    @property
    def dominant(self) -> "Key":
        return Key((self.tonic + 7) % 12, self.mode)

    @property
    def relative(self) -> "Key":
        return Key((self.tonic + 9) % 12, "minor") if self.mode == "major" else Key((self.tonic + 3) % 12, "major")

    @property
    def parallel(self) -> "Key":
        return Key(self.tonic, "minor" if self.mode == "major" else "major")


ALL_KEYS = tuple(Key(t, m) for m in MODES for t in range(12))    # index = 12 * (mode == minor) + tonic

_TONIC = re.compile(r"^\s*([A-Ga-g])(?:[\s-]*(sharp|flat)\b|(#|♯|♭|-|b(?![a-ln-z])))?", re.IGNORECASE)
_MINOR = re.compile(r"(minor|\bmin\b|:min|m$|\bmoll\b)", re.IGNORECASE)
_MAJOR = re.compile(r"(major|\bmaj\b|:maj|\bdur\b)", re.IGNORECASE)


def parse_key(key: object, mode: object = None) -> Key | None:
    """A Key from metadata spellings, or None when there is nothing usable.

    Understands music21 ("B-", "f#", lower case = minor), text ("B-flat minor", "Bb major",
    "G:maj", "Am"), and a separate mode column ("minor"/"major") which wins when given.
    """
    if not isinstance(key, str) or not key.strip():
        return None
    text = key.strip()
    match = _TONIC.match(text)
    if match is None:
        return None
    letter, accidental = match.group(1), (match.group(2) or match.group(3) or "").lower()
    pc = PITCH_CLASSES[letter.lower()]
    if accidental in ("#", "♯", "sharp"):
        pc += 1
    elif accidental in ("-", "b", "♭", "flat"):
        pc -= 1
    rest = text[match.end():]
    mode_text = mode.strip().lower() if isinstance(mode, str) and mode.strip() else ""
    if mode_text in MODES:
        resolved = mode_text
    elif _MINOR.search(rest):
        resolved = "minor"
    elif _MAJOR.search(rest):
        resolved = "major"
    else:
        resolved = "minor" if letter.islower() else "major"
    return Key(pc % 12, resolved)


def profile_matrix(profile: str = "krumhansl") -> np.ndarray:
    """[24, 12] z-scored key templates, row i = ALL_KEYS[i] (so a dot product / 12 = Pearson r)."""
    major, minor = (np.asarray(p, dtype=np.float64) for p in KEY_PROFILES[profile])
    rows = [np.roll(major, t) for t in range(12)] + [np.roll(minor, t) for t in range(12)]
    m = np.stack(rows)
    return (m - m.mean(axis=1, keepdims=True)) / m.std(axis=1, keepdims=True)


@dataclasses.dataclass(frozen=True)
class KeyEstimate:
    key: Key
    correlation: float   # Pearson r of the pitch-class profile with the winning template
    margin: float        # r(best) - r(second best): small = ambiguous (often relative/parallel keys)


def estimate_key(chroma: np.ndarray, profile: str = "krumhansl") -> KeyEstimate | None:
    """Krumhansl–Schmuckler key of a chroma matrix [12, frames] (or a pitch-class vector [12]).

    Returns None for silence (a flat profile has no key).
    """
    pcp = np.asarray(chroma, dtype=np.float64)
    if pcp.ndim == 2:
        pcp = pcp.sum(axis=1)
    if pcp.shape != (12,) or not np.all(np.isfinite(pcp)) or pcp.std() < 1e-9:
        return None
    z = (pcp - pcp.mean()) / pcp.std()
    scores = profile_matrix(profile) @ z / 12.0          # [24] Pearson r per key
    best, second = np.argsort(scores)[::-1][:2]
    return KeyEstimate(ALL_KEYS[best], float(scores[best]), float(scores[best] - scores[second]))


# MIREX key-detection score (as in mir_eval.key.weighted_score)
MIREX_WEIGHTS = {"exact": 1.0, "fifth": 0.5, "relative": 0.3, "parallel": 0.2, "other": 0.0}


def key_relation(estimate: Key, reference: Key) -> str:
    """How an estimated key relates to the reference: exact | fifth | relative | parallel | other.

    "fifth" is the estimate a perfect fifth above the reference in the same mode (the MIREX
    convention, which mir_eval follows: only the dominant, not the subdominant, earns credit).
    """
    if estimate == reference:
        return "exact"
    if estimate == reference.dominant:
        return "fifth"
    if estimate == reference.relative:
        return "relative"
    if estimate == reference.parallel:
        return "parallel"
    return "other"


def mirex_score(estimate: Key, reference: Key) -> float:
    return MIREX_WEIGHTS[key_relation(estimate, reference)]
