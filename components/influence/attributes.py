"""Per-attribute agreement of a piece with a reference's true attributes (Influence's attribute breakdown).

    instrument  1 if the conditioning judge (components/judge, trained on real decoded music) names the
                reference's instrument
    tempo       Acc2: the beat tracker's tempo within 4 % of the reference's metadata tempo, or of
                2x, 1/2x, 3x, 1/3x of it (octave errors forgiven, as in MIREX)
    key         MIREX-weighted key score (1 same, 0.5 fifth, 0.3 relative, 0.2 parallel) of a
                Krumhansl-profile estimate against the reference's metadata key
    timbre      minus the RMS distance of log-mel statistics (mean and spread per band) to the reference's

Tempo and key come from the captioning stage's own analysis (librosa beat tracking, chroma).
"""

from __future__ import annotations

import numpy as np

from components.captioning.keys import Key, mirex_score, parse_key
from components.common.mel import mel_statistics

ATTRIBUTES = ("instrument", "tempo", "key", "timbre")


def acc2(estimate: float | None, reference: float | None, tolerance: float = 0.04) -> float:
    if not estimate or not reference:
        return 0.0
    return float(any(abs(estimate / (reference * m) - 1) <= tolerance for m in (1, 2, 0.5, 3, 1 / 3)))


def analyse(pieces: list[np.ndarray], sample_rate: int) -> list[tuple[float | None, Key | None]]:
    """(tempo bpm, key) per piece, from the captioning analysis with a Krumhansl key profile."""
    from components.captioning.analysis import analyse_audio

    out = []
    for audio in pieces:
        f = analyse_audio(np.asarray(audio, np.float32), sample_rate, key_profile="krumhansl", chroma="stft",
                          with_metre=False, loudness_lufs=-23.0)
        out.append((f.tempo_bpm, parse_key(f.key, f.mode) if f.key else None))
    return out


def agreement(pieces: list[np.ndarray], truths: list[dict], reference_audio: list[np.ndarray], sample_rate: int,
              judge=None) -> dict[str, np.ndarray]:
    """attribute -> [n] agreement of piece i with reference i's truth ({instrument, tempo_bpm, key, mode}); NaN
    where the metadata has no truth (a library without key tags): unknown, not a miss."""
    analysed = analyse(pieces, sample_rate)
    keys = [parse_key(truth.get("key"), truth.get("mode")) for truth in truths]
    out = {
        "tempo": np.array([acc2(t, truth.get("tempo_bpm")) if truth.get("tempo_bpm") else np.nan
                           for (t, _), truth in zip(analysed, truths)]),
        "key": np.array([np.nan if key is None else mirex_score(k, key) if k is not None else 0.0
                         for (_, k), key in zip(analysed, keys)]),
        "timbre": np.array([-float(np.sqrt(np.mean((mel_statistics(a, sample_rate) - mel_statistics(r, sample_rate)) ** 2)))
                            for a, r in zip(pieces, reference_audio)]),
    }
    if judge is not None and "instrument" in judge.classes:
        names = judge.classes["instrument"]
        predicted = judge.predict("instrument", judge.features(pieces))
        out["instrument"] = np.array([float(names[p] == truth.get("instrument")) if truth.get("instrument") else np.nan
                                      for p, truth in zip(predicted, truths)])
    return out
