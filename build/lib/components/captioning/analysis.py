"""What the audio itself says: tempo, key, metre guess, loudness, brightness, energy.

One clip (mono float32 samples) in, one `AudioFeatures` out. Everything is librosa on a shared
onset-strength envelope and one chroma matrix, ~100 ms a 10 s clip at 24 kHz (one core) once
numba has compiled librosa's kernels.

    samples [n] --STFT--> onset envelope [frames] --+--> onset peaks / second ----> energy
                --CQT---> chroma [12, frames] ---flux--+--> beat tracker -> tempo, beat frames
                                 +--> Krumhansl–Schmuckler ---------------> key, mode
                --STFT--> spectral centroid [frames] -----------------------> brightness
      beat-synchronous (onset strength + harmonic change) autocorrelation --> duple | triple
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from components.captioning.keys import estimate_key

MIN_SECONDS = 1.0          # below this, tempo and key are not estimated (None)


@dataclasses.dataclass(frozen=True)
class AudioFeatures:
    duration_s: float
    tempo_bpm: float | None          # librosa beat tracker's global tempo
    n_beats: int
    key: str | None                  # tonic name, e.g. "Bb"
    mode: str | None                 # "major" | "minor"
    key_correlation: float | None    # Pearson r with the winning key template
    key_margin: float | None         # r(best) - r(runner-up)
    metre: str | None                # "duple" | "triple" (beat-synchronous accent periodicity)
    metre_strength: float | None     # autocorrelation difference behind that guess, 0..2
    loudness_lufs: float | None      # BS.1770 integrated loudness (pyloudnorm)
    rms_dbfs: float | None
    brightness_hz: float | None      # spectral centroid, mean over non-silent frames
    onset_rate: float | None         # detected onsets per second

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in dataclasses.asdict(self).items()}


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float | None:
    """BS.1770 loudness in LUFS; None for clips shorter than one 400 ms gating block or silent."""
    import pyloudnorm

    if samples.size < int(0.4 * sample_rate) + 1:
        return None
    value = pyloudnorm.Meter(sample_rate).integrated_loudness(samples.astype(np.float64))
    return _finite_or_none(value)


def estimate_tempo(onset_env: np.ndarray, sample_rate: int, hop_length: int, start_bpm: float
                   ) -> tuple[float | None, np.ndarray]:
    """(tempo in bpm or None, beat frame indices) from an onset-strength envelope."""
    import librosa

    if onset_env.size < 8 or float(onset_env.max()) <= 0:
        return None, np.zeros(0, dtype=int)
    tempo, beats = librosa.beat.beat_track(onset_envelope=onset_env, sr=sample_rate, hop_length=hop_length,
                                           start_bpm=start_bpm, units="frames")
    bpm = float(np.atleast_1d(tempo)[0])
    return (bpm if bpm > 0 else None), np.asarray(beats, dtype=int)


def tempo_envelope(onset_env: np.ndarray, chroma: np.ndarray, harmonic_weight: float) -> np.ndarray:
    """What the beat tracker follows: spectral-flux onsets plus harmonic change (chroma flux).

    Legato instruments (choir, organ, strings) barely make spectral-flux onsets, but their chords
    still change on the beat. Both curves are scaled to unit spread before they are added.
        onset_env [frames], chroma [12, frames] -> [frames]
    """
    if harmonic_weight <= 0:
        return onset_env
    flux = np.maximum(np.diff(chroma, axis=1, prepend=chroma[:, :1]), 0.0).sum(axis=0)
    n = min(onset_env.size, flux.size)
    return onset_env[:n] / (onset_env[:n].std() + 1e-9) + harmonic_weight * flux[:n] / (flux[:n].std() + 1e-9)


def estimate_metre(onset_env: np.ndarray, chroma: np.ndarray, beats: np.ndarray) -> tuple[str | None, float | None]:
    """Duple or triple, from how beat accents repeat.

    Accent of a beat = onset strength at the beat + harmonic change into it (chords tend to
    change on strong beats). A bar of 2 or 4 beats makes the accent sequence correlate with
    itself two beats later; a bar of 3, three beats later. Needs ~9 beats (a 10 s clip at 54+ bpm).
    """
    if beats.size < 9:
        return None, None
    import librosa

    strength = onset_env[np.clip(beats, 0, onset_env.size - 1)]
    synced = librosa.util.sync(chroma, np.clip(beats, 0, chroma.shape[1] - 1), aggregate=np.median)  # [12, n_beats+1]
    synced = synced / (np.linalg.norm(synced, axis=0, keepdims=True) + 1e-9)
    change = 1.0 - np.sum(synced[:, 1:] * synced[:, :-1], axis=0)           # [n_beats]: into segment i+1
    change = change[: strength.size]
    accent = _zscore(strength[: change.size]) + _zscore(change)
    duple = max(_autocorr(accent, 2), _autocorr(accent, 4))      # bars of 2 or 4 beats
    triple = max(_autocorr(accent, 3), _autocorr(accent, 6))     # bars of 3 (or pairs of them)
    return ("triple" if triple > duple else "duple"), float(abs(triple - duple))


def _zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 1e-9 else np.zeros_like(x)


def _autocorr(x: np.ndarray, lag: int) -> float:
    x = x - x.mean()
    denom = float(np.dot(x, x))
    return float(np.dot(x[:-lag], x[lag:]) / denom) if denom > 0 and x.size > lag else 0.0


def analyse_audio(samples: np.ndarray, sample_rate: int, *, hop_length: int = 512, key_profile: str = "aarden",
                  chroma: str = "cqt", start_bpm: float = 120.0, harmonic_weight: float = 1.0, with_metre: bool = True,
                  loudness_lufs: float | None = None) -> AudioFeatures:
    """All audio-derived tags of one mono clip. `loudness_lufs` skips the loudness measurement
    when the manifest already carries it."""
    import librosa

    y = np.asarray(samples, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected mono samples [n], got shape {y.shape}")
    duration = y.size / sample_rate
    loudness = loudness_lufs if loudness_lufs is not None else integrated_loudness(y, sample_rate)
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if y.size else 0.0
    rms_dbfs = 20 * math.log10(rms) if rms > 0 else None
    if duration < MIN_SECONDS or rms_dbfs is None:
        return AudioFeatures(duration, None, 0, None, None, None, None, None, None, loudness, rms_dbfs, None, None)

    onset_env = librosa.onset.onset_strength(y=y, sr=sample_rate, hop_length=hop_length)
    onsets = librosa.onset.onset_detect(onset_envelope=onset_env, sr=sample_rate, hop_length=hop_length)
    if chroma == "cqt":
        chroma_m = librosa.feature.chroma_cqt(y=y, sr=sample_rate, hop_length=hop_length)
    else:   # 8192 samples at 24 kHz: 2.9 Hz bins, enough to tell semitones apart down to ~50 Hz
        chroma_m = librosa.feature.chroma_stft(y=y, sr=sample_rate, hop_length=hop_length, n_fft=8192)
    key = estimate_key(chroma_m, key_profile)
    pulse = tempo_envelope(onset_env, chroma_m, harmonic_weight)
    tempo, beats = estimate_tempo(pulse, sample_rate, hop_length, start_bpm)

    centroid = librosa.feature.spectral_centroid(y=y, sr=sample_rate, hop_length=hop_length)[0]
    frame_rms = librosa.feature.rms(y=y, hop_length=hop_length)[0]
    n = min(centroid.size, frame_rms.size)
    voiced = frame_rms[:n] > frame_rms.max() * 10 ** (-40 / 20)      # ignore frames 40 dB below the peak
    brightness = float(centroid[:n][voiced].mean()) if voiced.any() else None

    metre, metre_strength = (estimate_metre(onset_env, chroma_m, beats) if with_metre else (None, None))
    return AudioFeatures(
        duration_s=duration, tempo_bpm=tempo, n_beats=int(beats.size),
        key=key.key.tonic_name if key else None, mode=key.key.mode if key else None,
        key_correlation=key.correlation if key else None, key_margin=key.margin if key else None,
        metre=metre, metre_strength=metre_strength, loudness_lufs=loudness, rms_dbfs=rms_dbfs,
        brightness_hz=_finite_or_none(brightness), onset_rate=len(onsets) / duration,
    )


def analyse_file(path: str | os.PathLike, loudness_lufs: float | None = None, **options) -> AudioFeatures:
    """Read a clip (any channel count, downmixed) and analyse it; picklable for process pools."""
    from components.common.audio import read_audio, to_mono

    audio, sr = read_audio(path)
    return analyse_audio(to_mono(audio), sr, loudness_lufs=loudness_lufs, **options)
