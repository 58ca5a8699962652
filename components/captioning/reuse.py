"""Captioning a corpus that grew: a clip whose audio, loudness and analysis settings are unchanged keeps the
analysis the previous output recorded for it (beat tracking and key finding are most of the stage's time);
only new and changed clips are analysed. Captions and their embeddings are then made for every clip as
before, so the output equals a fresh run's.

    analysis.parquet (in the output)    clip_id, key (md5 of the clip's bytes, its loudness, the analysis
                                        settings and captioning's code), features (AudioFeatures as JSON)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pandas as pd

from components.captioning.analysis import AudioFeatures
from components.common.lineage import file_digest, stage_code_version

ANALYSIS = "analysis.parquet"


def clip_keys(curated: Path, rows: list[dict], options: dict, loudness) -> list[str]:
    common = json.dumps(options, sort_keys=True) + (stage_code_version("captions") or "")
    return [hashlib.md5(f"{common}|{file_digest(curated / str(r['path']))}|{loudness(r)}".encode()).hexdigest()
            for r in rows]


def previous_features(out: Path) -> dict[str, AudioFeatures]:
    """{key: features} from the output a previous run left ({} when there is none or it cannot be read)."""
    try:
        table = pd.read_parquet(out / ANALYSIS)
        return {k: AudioFeatures(**json.loads(f)) for k, f in zip(table["key"], table["features"])}
    except Exception:  # noqa: BLE001 - nothing to reuse is never an error: analyse afresh
        return {}


def write_analysis(folder: Path, rows: list[dict], keys: list[str], features: list[AudioFeatures]) -> None:
    pd.DataFrame({"clip_id": [str(r["clip_id"]) for r in rows], "key": keys,
                  # every digit (to_dict rounds): a reused analysis must equal a fresh one exactly
                  "features": [json.dumps(dataclasses.asdict(f), sort_keys=True) for f in features]}) \
        .to_parquet(folder / ANALYSIS, index=False)
