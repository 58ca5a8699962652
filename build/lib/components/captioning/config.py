"""The `captions` section of params.yaml. Defaults are the `tiny` profile (2 CPU cores).

Cost on the tiny corpus (~80 clips x 10 s, one core): audio analysis ~60-100 ms a clip once
librosa's numba kernels are compiled (~3 s the first time on a machine, cached after);
5 phrasings x 80 clips = 400 captions through MiniLM at ~3 ms each ~ 1.5 s, plus ~5 s to import
sentence-transformers and load the model. The stage takes ~15-25 s.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.config import StageConfig


class CaptionConfig(StageConfig):
    # --- captions
    n_phrasings: int = Field(5, ge=1, le=64)
    # 5 phrasings x 384 floats x 4 bytes = 7.5 KiB of embeddings a clip; the LM samples one
    # phrasing per step, so more phrasings = more text augmentation at no audio cost.
    seed: int = 0                    # captions of a clip depend on (seed, clip_id), not on row order
    keep_probability: float = Field(0.75, ge=0.0, le=1.0)
    # each optional attribute survives into a non-canonical phrasing with this chance, so the LM
    # also learns from partial prompts (people rarely type key, metre and tempo all at once);
    # the first phrasing always mentions everything that is known.
    prefer_metadata: bool = True     # captions use sidecar tempo/key/metre where known, audio otherwise
    metadata_tempo_unit: Literal["quarter", "beat"] = "quarter"
    # the demo corpus labels tempo in quarter notes a minute; captions and the agreement check use
    # felt beats (dotted quarters in 6/8: a jig at 180 quarters = 120 bpm). "beat": already beats.
    captioner: Literal["template"] = "template"   # the Captioner implementation (see captioner.py)

    # --- audio analysis (librosa; clips are mono 24 kHz)
    hop_length: int = 512            # 512 / 24000 Hz = 21 ms frames: beat-tracking resolution
    key_profile: Literal["krumhansl", "temperley", "aarden", "bellman"] = "aarden"
    chroma: Literal["cqt", "stft"] = "cqt"
    # exact key agreement measured on two rendered sets: the tiny demo corpus (66 clips, reference =
    # whole-piece key) and 84 music21 clips (reference = key of the 10 s heard):
    #   Aarden + CQT 0.70 / 0.89, Temperley + CQT 0.74 / 0.82, Aarden + STFT 0.56 / 0.87,
    #   Krumhansl + CQT 0.48 / 0.71. STFT chroma (n_fft 8192) lets the strong upper partials of
    #   clarinet and flute pull the estimate to the dominant; CQT costs ~80 ms a clip, STFT ~35.
    start_bpm: float = 120.0         # centre of librosa's log-normal tempo prior (librosa's default)
    tempo_harmonic_weight: float = Field(1.0, ge=0.0)
    # the beat tracker follows onset strength + this x chroma flux (harmonic change), which helps
    # legato choir/organ/strings; 0 = librosa's plain onset envelope. acc1/acc2, weight 0 -> 1:
    # demo corpus (222 clips) 0.59/0.70 -> 0.63/0.73; 84 other music21 renders 0.63/0.88 -> 0.60/0.87.
    # (A wider prior, std 2 octaves, gave acc2 0.80 but acc1 0.55 on the 222; start_bpm 100 lost both.)
    estimate_metre: bool = False     # duple/triple guess from beat-synchronous accents (recorded + scored)
    # it finds the bar on clearly accented audio (tests), but on those 84 rendered clips it agreed
    # with the score's metre only 52-60 % of the time (always saying "duple": 74 %), so it is off
    audio_metre_in_captions: bool = False   # state the audio guess when metadata has no metre
    workers: int = Field(1, ge=1)    # processes for audio analysis (1 on the 2-core laptop)

    # --- words: bucket edges, low to high (len(words) == len(edges) + 1)
    tempo_edges_bpm: list[float] = [66.0, 84.0, 108.0, 132.0]
    tempo_words: list[str] = ["very slow", "slow", "moderate", "brisk", "fast"]
    brightness_edges_hz: list[float] = [900.0, 1500.0, 2400.0]   # spectral centroid, mean over frames
    brightness_words: list[str] = ["dark", "warm", "bright", "brilliant"]
    energy_edges: list[float] = [1.5, 3.0, 5.0]                  # detected onsets per second
    energy_words: list[str] = ["calm", "flowing", "lively", "energetic"]
    loudness_edges_lufs: list[float] = [-35.0, -14.0, -8.0]       # BS.1770 integrated loudness
    loudness_words: list[str] = ["quiet", "moderate", "loud", "very loud"]
    # curation normalises every clip to one target (about -23 LUFS), so nearly all clips are
    # "moderate", which captions leave unsaid; the edges only flag clips far from the target.

    # --- agreement of audio estimates with metadata
    tempo_tolerance: float = Field(0.08, gt=0.0, lt=0.5)   # MIREX tempo: within 8 % of the reference
    tempo_metrical_factors: list[float] = [2.0, 3.0]
    # the "octave-tolerant" accuracy (MIREX acc2) also accepts the reference tempo times or divided
    # by these: half/double, and third/triple (the usual error in 3/4 and 6/8)

    # --- text encoder
    encoder_batch_size: int = Field(64, ge=1)
    device: str = "cpu"

    @model_validator(mode="after")
    def _buckets_match(self) -> "CaptionConfig":
        for name, edges, words in self.buckets():
            if len(words) != len(edges) + 1:
                raise ValueError(f"{name}: {len(edges)} edges need {len(edges) + 1} words, got {len(words)}")
            if list(edges) != sorted(edges):
                raise ValueError(f"{name}: bucket edges must increase, got {edges}")
        return self

    def buckets(self) -> list[tuple[str, list[float], list[str]]]:
        return [
            ("tempo", self.tempo_edges_bpm, self.tempo_words),
            ("brightness", self.brightness_edges_hz, self.brightness_words),
            ("energy", self.energy_edges, self.energy_words),
            ("loudness", self.loudness_edges_lufs, self.loudness_words),
        ]
