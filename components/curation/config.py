"""Configuration of curation (params.yaml section `curation`); defaults are the tiny profile."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from components.common.splits import FRACTION_SPLITS
from components.config import StageConfig


class CurationConfig(StageConfig):
    sample_rate: int = 24_000  # the rate every later stage (codec, LM) works at

    # Segmentation: non-overlapping clips of clip_s; the final shorter piece is kept when it
    # is at least min_clip_s. A 28 s demo track -> 10 + 10 + 8 s. Files shorter than
    # min_clip_s (before or after trimming) are quarantined as too_short.
    clip_s: float = Field(10.0, gt=0)
    min_clip_s: float = Field(2.0, gt=0.4)  # > 0.4 s: BS.1770 needs one 400 ms gating block
    # Whole files above this are quarantined unread: 30 min of 48 kHz stereo float is ~700 MB
    # decoded, about what one worker may hold on a 24 GiB / 2-core machine.
    max_file_s: float = Field(1800.0, gt=0)
    max_channels: int = Field(64, ge=1)

    # Loudness (ITU-R BS.1770 via pyloudnorm), per clip: gain to the target, but never past the
    # sample-peak ceiling. -23 LUFS (EBU R128) leaves 22 dB of headroom below -1 dBFS, so only
    # clips with a crest factor above 22 dB are held below target; a clip that would end more
    # than loudness_floor_lu under the target, or that needs more than max_gain_db, is rejected.
    loudness_target_lufs: float = -23.0
    peak_ceiling_dbfs: float = Field(-1.0, le=0.0)
    loudness_floor_lu: float = Field(10.0, ge=0.0)
    max_gain_db: float = Field(40.0, gt=0.0)

    # Silence: 50 ms frames; leading/trailing frames more than trim_top_db below the loudest
    # frame are trimmed (relative, so the cut does not move with the gain of a copy), keeping
    # trim_pad_s around the music. A file whose loudest frame is below silence_dbfs is silent;
    # a clip with fewer than min_active_fraction of its frames above the trim threshold too.
    trim_top_db: float = Field(50.0, gt=0)
    trim_pad_s: float = Field(0.05, ge=0)
    silence_dbfs: float = -60.0
    # Content below this frequency is not heard: the mean (DC) is removed and the signal high-passed
    # here before any level is measured, so a DC offset or a slow drift is not mistaken for music.
    audible_low_hz: float = Field(20.0, gt=0.0)
    min_active_fraction: float = Field(0.25, ge=0.0, le=1.0)

    # Clipping, measured on the decoded source before any gain: samples with |x| >= clip_level
    # in runs of at least clip_run (a single full-scale peak is not clipping).
    clip_level: float = Field(0.999, gt=0.5, le=1.0)
    clip_run: int = Field(3, ge=1)
    max_clipped_fraction: float = Field(0.01, ge=0.0, le=1.0)

    # Near-duplicates: 1024-bit fingerprints (fingerprint.py); a clip within max_hamming (fraction
    # of differing bits) of a clip kept earlier is quarantined as its duplicate. Measured on the
    # tiny demo corpus (66 clips): the same audio at -14 dB / 44.1 kHz / Ogg / 8 kHz MP3 <= 0.14
    # (worst: sustained clarinet chords through Ogg); the same piece on another instrument >= 0.25
    # (kept: not a duplicate); different pieces >= 0.39. 0.2 sits between the first two.
    fingerprint_max_hamming: float = Field(0.2, gt=0.0, lt=0.5)

    # Split for files without a given split (sidecar or table): the hash of the file's group into these
    # fractions, so a group never straddles splits. auto: the album (with its artist) when the tags or the
    # sidecar name one, else the piece; album / artist / work: that field (the piece where a file lacks it);
    # piece: the piece id (sidecar piece_id, else the file's stem).
    split_fractions: dict[str, float] = {"train": 0.8, "valid": 0.1, "test": 0.1}
    split_by: Literal["auto", "album", "artist", "work", "piece"] = "auto"

    # Worker processes decode/normalise/segment files in parallel; each file is isolated (an
    # exception or even a crashed worker quarantines that file only). tiny: 1 (2 shared cores).
    workers: int = Field(1, ge=1)

    @field_validator("split_fractions")
    @classmethod
    def _three_splits(cls, value: dict[str, float]) -> dict[str, float]:
        if set(value) != set(FRACTION_SPLITS) or any(v < 0 for v in value.values()) or abs(sum(value.values()) - 1) > 1e-6:
            raise ValueError("split_fractions needs train/valid/test fractions >= 0 that sum to 1")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "CurationConfig":
        if self.min_clip_s > self.clip_s:
            raise ValueError("min_clip_s must not exceed clip_s")
        if self.max_file_s < self.min_clip_s:
            raise ValueError("max_file_s must be at least min_clip_s")
        return self

    @property
    def loudness_range(self) -> tuple[float, float]:
        """Clip loudness the stage guarantees (and the manifest expectation checks)."""
        return self.loudness_target_lufs - self.loudness_floor_lu, self.loudness_target_lufs + 0.5
