"""A small curated-style folder (clips/*.wav + manifest.parquet, as `lyra curate` writes it) with
known keys and tempi, some clips with sidecar metadata and some without."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.common.audio import write_wav

from .synth import SR, bar_pattern, cadence, gm_cadence

# clip_id, audio, metadata (None = no sidecar)
KEY_NAMES = {0: "C", 2: "D", 4: "E", 5: "F", 7: "G", 9: "A", 10: "B-"}


def _clips() -> list[tuple[str, np.ndarray, dict | None]]:
    return [
        ("bach-chorale-strings-000", gm_cadence(7, "major", 80, program=48),
         dict(title="Chorale BWV 0", composer="J.S. Bach", collection="bach", instrument="string ensemble", program=48,
              key="G", mode="major", meter="4/4", tempo_bpm=80.0, n_parts=4)),
        ("bach-chorale-organ-000", gm_cadence(2, "minor", 96, program=19),
         dict(title="Chorale BWV 1", composer="J.S. Bach", collection="bach", instrument="church organ", program=19,
              key="d", mode="minor", meter="4/4", tempo_bpm=96.0, n_parts=4)),
        ("jig-piano-000", cadence(10, "major", 120),
         dict(title="The Kesh Jig", composer=None, collection="oneills1850", instrument="piano", program=0,
              key="B-", mode="major", meter="6/8", tempo_bpm=180.0)),     # quarters: 120 dotted-quarter beats
        ("waltz-flute-000", bar_pattern(3, 100, tonic_pc=5),
         dict(title="Waltz", composer="Traditional", collection="folk", instrument="flute", program=73,
              key="F", mode="major", meter="3/4", tempo_bpm=100.0)),
        ("unknown-000", cadence(9, "minor", 90), None),
        ("unknown-001", gm_cadence(4, "major", 110, program=24), None),
    ]


def write_curated(root: Path, clips=None) -> Path:
    """Write clips + manifest like the curation stage does; returns the folder."""
    clips = _clips() if clips is None else clips
    (root / "clips").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (clip_id, audio, meta) in enumerate(clips):
        path = f"clips/{clip_id}.wav"
        write_wav(root / path, audio, SR)
        row = dict(clip_id=clip_id, path=path, source_file=f"{clip_id}.wav", piece_id=clip_id.rsplit("-", 1)[0],
                   split="train" if i % 3 else "valid", segment_index=0, start_s=0.0,
                   duration_s=audio.size / SR, source_duration_s=audio.size / SR, sample_rate=SR,
                   loudness_lufs=np.nan, source_loudness_lufs=np.nan, peak_dbfs=-6.0, clipped_fraction=0.0,
                   fingerprint=f"{i:016x}", meta=json.dumps(meta or {}))
        for field in ("title", "composer", "collection", "instrument", "program", "key", "mode", "meter", "tempo_bpm"):
            row[field] = (meta or {}).get(field)
        rows.append(row)
    manifest = pd.DataFrame(rows)
    manifest["program"] = manifest["program"].astype("Int64")
    manifest["tempo_bpm"] = manifest["tempo_bpm"].astype(float)
    manifest.to_parquet(root / "manifest.parquet", index=False)
    return root


@pytest.fixture(scope="session")
def curated_dir(tmp_path_factory) -> Path:
    return write_curated(tmp_path_factory.mktemp("curated"))
