"""The judgements as ORAQL's import tables (components/oraql/ratings.py), with the audio they name.

    out/pairwise.csv   audio_a, audio_b, rater, choice, piece
    out/ratings.csv    audio, rater, score, scale_min, scale_max, piece     (when any side was rated)
    out/audio/         the pairs' clips

A clip's `piece` is its pair: both sides share prompt and seed, so ORAQL's split keeps them together.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from components.common.atomic import atomic_write_bytes, atomic_write_text


def export_tables(judgements: list[dict], audio_dir: Path, out: Path) -> dict:
    audio_out = Path(out) / "audio"
    audio_out.mkdir(parents=True, exist_ok=True)
    pairs, ratings = [], []
    for j in judgements:
        names = {}
        for side in "ab":
            name = j[f"audio_{side}"]
            if not (audio_out / name).is_file():
                atomic_write_bytes(audio_out / name, (Path(audio_dir) / name).read_bytes())
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
            atomic_write_text(Path(out) / name, text.getvalue())
            written[name] = len(rows)
    return written

