"""Configuration of the demo corpus (params.yaml section `corpus`); defaults are the tiny profile."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from components.config import StageConfig
from components.corpus.catalogue import COLLECTIONS, INSTRUMENTS


class CorpusConfig(StageConfig):
    # Where the corpus comes from (components/corpus/sources.py): `demo` builds the offline demo corpus from
    # the fields below; a folder, a glob, a metadata table (CSV / Parquet) or an s3:// prefix brings in a
    # team's library instead, and the fields below are not used
    source: str = "demo"

    seed: int = 0  # picks the pieces, their instruments, default tempi and the split; same seed -> same corpus

    # Size. tiny: 96 pieces x 2 instruments x ~21 s (cut at the last bar line before 24 s, plus
    # the release tail) ~= 67 min of audio, built in ~45 s on 2 cores. `hours` (or
    # `lyra corpus demo --hours H`) replaces the piece count by a duration target: pieces are
    # added in catalogue order until the corpus holds that much audio.
    n_pieces: int = Field(96, ge=1)
    hours: float | None = Field(None, gt=0)

    collections: list[str] = ["bach", "palestrina", "monteverdi", "ryansMammoth", "oneills1850", "airdsAirs"]
    instruments: list[str] = ["piano", "strings", "organ", "guitar", "flute", "choir", "harpsichord", "clarinet"]
    instruments_per_piece: int = Field(2, ge=1)  # each piece rendered under this many different programs

    # Out-of-distribution set (split "ood"): `ood_pieces` further pieces from the same catalogue,
    # never in train/valid/test, each played by `ood_instruments_per_piece` of `ood_instruments`,
    # programs that no training track uses. It measures what a model does on music AND a timbre
    # it never saw (the codec's out-of-distribution ViSQOL, for instance).
    ood_pieces: int = Field(8, ge=0)
    ood_instruments: list[str] = ["oboe", "trumpet", "vibraphone", "accordion"]
    ood_instruments_per_piece: int = Field(1, ge=1)

    # Tracks are cut at the last bar line before max_track_s - release_s, then the notes are
    # released and `release_s` of decay is rendered, so no track is longer than max_track_s.
    max_track_s: float = Field(24.0, gt=2.0)
    min_track_s: float = Field(6.0, ge=0.0)  # shorter pieces (a 4-bar fragment) are skipped
    release_s: float = Field(1.0, ge=0.0, le=5.0)
    sample_rate: int = 24_000
    peak_dbfs: float = Field(-1.0, le=0.0)  # renders are peak-normalised here before PCM16

    # Split by PIECE (all renderings of a piece share its split), so later stages measure
    # generalisation to unseen music, not to an unseen instrument. Fractions of pieces, with at
    # least `min_eval_pieces` each in valid and test (tiny: 96 pieces -> 76 / 10 / 10).
    split_fractions: dict[str, float] = {"train": 0.8, "valid": 0.1, "test": 0.1}
    min_eval_pieces: int = Field(2, ge=0)

    workers: int = Field(2, ge=1)  # rendering processes; tiny: one per core

    @field_validator("source")
    @classmethod
    def _a_kind_of_source(cls, value: str) -> str:
        from components.corpus.sources import parse

        return parse(value).spec

    @field_validator("collections")
    @classmethod
    def _known_collections(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(COLLECTIONS))
        if unknown or not value:
            raise ValueError(f"unknown or no collections {unknown}; choose from {sorted(COLLECTIONS)}")
        return value

    @field_validator("instruments", "ood_instruments")
    @classmethod
    def _known_instruments(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(INSTRUMENTS))
        if unknown or not value:
            raise ValueError(f"unknown or no instruments {unknown}; choose from {sorted(INSTRUMENTS)}")
        return value

    @field_validator("split_fractions")
    @classmethod
    def _three_splits(cls, value: dict[str, float]) -> dict[str, float]:
        if set(value) != {"train", "valid", "test"} or any(v < 0 for v in value.values()) \
                or abs(sum(value.values()) - 1.0) > 1e-6:
            raise ValueError("split_fractions needs train/valid/test fractions >= 0 that sum to 1")
        return value

    @model_validator(mode="after")
    def _enough_instruments(self) -> "CorpusConfig":
        if self.instruments_per_piece > len(self.instruments):
            raise ValueError(f"instruments_per_piece={self.instruments_per_piece} exceeds the "
                             f"{len(self.instruments)} instruments listed")
        if self.ood_pieces and self.ood_instruments_per_piece > len(self.ood_instruments):
            raise ValueError(f"ood_instruments_per_piece={self.ood_instruments_per_piece} exceeds the "
                             f"{len(self.ood_instruments)} ood_instruments listed")
        shared = sorted(set(self.instruments) & set(self.ood_instruments))
        if self.ood_pieces and shared:
            raise ValueError(f"ood_instruments {shared} are also training instruments: the out-of-distribution "
                             "set must play timbres the corpus never trains on")
        if self.min_track_s >= self.max_track_s:
            raise ValueError("min_track_s must be below max_track_s")
        return self
