"""Audio I/O and the few signal operations every stage needs.

Arrays are float32, shaped (channels, samples). soundfile reads wav/flac/ogg/mp3 with exact
round trips; resampling uses a polyphase filter (scipy) since torchaudio is unusable here.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from components.common.atomic import atomic_path

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")


def read_audio(path: str | os.PathLike, *, always_2d: bool = True) -> tuple[np.ndarray, int]:
    """Decode a file to float32 (channels, samples) and its sample rate."""
    data, sr = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    audio = np.ascontiguousarray(data.T)
    return (audio if always_2d else audio[0]), int(sr)


def audio_info(path: str | os.PathLike) -> sf._SoundFileInfo:
    """Header-only look at a file (duration, rate, channels) without decoding it."""
    return sf.info(os.fspath(path))


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """Write (channels, samples) or (samples,) audio atomically."""
    audio = np.asarray(audio, dtype=np.float32)
    frames = audio.T if audio.ndim == 2 else audio
    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(os.fspath(tmp), frames, sample_rate, subtype=subtype, format="WAV")
    return Path(path)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """(channels, samples) -> (samples,) by averaging channels."""
    return audio.mean(axis=0) if audio.ndim == 2 else audio


def resample(audio: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Polyphase resampling along the last axis (exact ratio, e.g. 44100 -> 24000 = 80/147)."""
    if sr_from == sr_to:
        return audio.astype(np.float32, copy=False)
    ratio = Fraction(sr_to, sr_from).limit_denominator(10_000)
    out = resample_poly(audio, ratio.numerator, ratio.denominator, axis=-1)
    return out.astype(np.float32, copy=False)


def peak_dbfs(audio: np.ndarray) -> float:
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return 20 * math.log10(peak) if peak > 0 else -math.inf


def rms_dbfs(audio: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    return 20 * math.log10(rms) if rms > 0 else -math.inf
