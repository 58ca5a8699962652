"""Where listeners' judgements live: params.yaml `listening` (typed; defaults run on a laptop)."""

from __future__ import annotations

from pydantic import Field

from components.config import StageConfig


class ListeningConfig(StageConfig):
    # SQLite here; the cluster profile's PostgreSQL when LYRA_PG_HOST is set (votes.py)
    database: str = ".lyra/listening/votes.sqlite"
    audio_dir: str = ".lyra/listening/audio"     # the pairs' audio, under random names
    # the loop back into ORAQL: every `retrain_after` new judgements the listeners sensor exports them here and
    # re-runs ORAQL, when params point ORAQL at the export (oraql.pairwise: data/listening/export/pairwise.csv)
    export_dir: str = "data/listening/export"
    retrain_after: int = Field(50, ge=1)


def load_listening_config(project=".", profile: str | None = None) -> ListeningConfig:
    from pathlib import Path

    from components.config import load_stage_config

    return load_stage_config("listening", ListeningConfig, params_path=Path(project) / "params.yaml", profile=profile)
