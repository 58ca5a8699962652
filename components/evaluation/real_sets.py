"""The real music a generated set is compared with, made the way the generated set was made."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def curated_clips(curated: str | Path, clip_ids, seconds: float, sample_rate: int) -> list[np.ndarray]:
    """Each curated clip's first `seconds`, mono, at `sample_rate` (the codec's: generations are compared at it)."""
    from components.common.audio import read_audio, resample, to_mono

    out = []
    for clip_id in clip_ids:
        audio, rate = read_audio(Path(curated) / "clips" / f"{clip_id}.wav")
        audio = to_mono(audio)[: int(round(seconds * rate))]
        out.append(audio if rate == sample_rate else resample(audio, rate, sample_rate))
    return out


def codec_round_trip(clips, codec, seconds: float, batch: int = 32) -> list[np.ndarray]:
    """Each token clip's first `seconds`, decoded by the codec from its codes: real music that went through the
    codec, as every generation does (so the codec's own sound is not counted against a model)."""
    from components.omnicodec.decoding import decode_in_batches

    max_frames = int(round(seconds * codec.frame_rate))
    return decode_in_batches(codec, [np.asarray(c.codes[:, :max_frames]) for c in clips], batch)
