"""Controlled damage to a clean clip: the rungs of ORAQL's quality ladder.

Every function maps (source [n_src] float32 at `sr`, start sample, length n, strength, rng) to
n damaged samples; the clean version is `source[start:start + n]`. Signal damage keeps the
music and spoils the sound; structural damage keeps the sound and spoils the music:

    signal      noise (SNR dB)   clipping (share of peak)   band_limit (cut-off Hz)
                dropouts (share silenced)   warp (wow depth, cents)      [+ OmniCodec, in ladder.py]
    structural  shuffle (share of beats out of order)   loop (share replaced by a looped half-bar)
                tempo_jump (from a random point on, the tempo rises by up to 60 %)

Signal-damaged audio is level-matched to the clean clip (RMS), so loudness alone never tells.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfiltfilt

FADE_S = 0.005          # splices are cross-faded over 5 ms, so a cut is a musical fault, not a click


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def level_match(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    r = rms(x)
    return (x * (rms(ref) / r)).astype(np.float32) if r > 0 else x.astype(np.float32)


def _clean(source: np.ndarray, start: int, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.float32)
    seg = source[start:start + n]
    out[:len(seg)] = seg
    return out


# ------------------------------------------------------------------------------ signal damage
def noise(source, start, n, snr_db: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    clean = _clean(source, start, n)
    sigma = rms(clean) / (10 ** (snr_db / 20))
    return (clean + rng.standard_normal(n).astype(np.float32) * sigma).astype(np.float32)


def clipping(source, start, n, level: float, rng, sr: int) -> np.ndarray:
    clean = _clean(source, start, n)
    peak = float(np.abs(clean).max()) or 1.0
    return level_match(np.clip(clean, -level * peak, level * peak), clean)


def band_limit(source, start, n, cutoff_hz: float, rng, sr: int) -> np.ndarray:
    clean = _clean(source, start, n)
    sos = butter(8, min(cutoff_hz, 0.45 * sr), btype="low", fs=sr, output="sos")
    return level_match(sosfiltfilt(sos, clean).astype(np.float32), clean)


def dropouts(source, start, n, share: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    clean = _clean(source, start, n)
    out = clean.copy()
    target, silenced = int(share * n), np.zeros(n, dtype=bool)
    while silenced.sum() < target:
        length = int(rng.uniform(0.04, 0.2) * sr)
        at = int(rng.integers(0, max(1, n - length)))
        silenced[at:at + length] = True
    out[silenced] = 0.0
    return level_match(out, clean)


def warp(source, start, n, cents: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Wow: the playback rate swings by +-cents around 1 at 0.5-2 Hz (pitch and timing together)."""
    clean = _clean(source, start, n)
    rate_hz = float(rng.uniform(0.5, 2.0))
    depth = 2 ** (cents / 1200) - 1
    t = np.arange(n) / sr
    # read position p(t) = t + depth * sin(2 pi f t) / (2 pi f): its rate is 1 + depth * cos(2 pi f t)
    pos = (t + depth * np.sin(2 * np.pi * rate_hz * t + rng.uniform(0, 2 * np.pi)) / (2 * np.pi * rate_hz)) * sr
    pos = np.clip(pos + start, 0, len(source) - 1)
    return level_match(np.interp(pos, np.arange(len(source)), source).astype(np.float32), clean)


# -------------------------------------------------------------------------- structural damage
def _crossfade_concat(pieces: list[np.ndarray], sr: int, n: int) -> np.ndarray:
    """Concatenate segments with short linear cross-fades at the joins; exactly n samples (zero-padded)."""
    fade = max(1, int(FADE_S * sr))
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    out = np.zeros(0, dtype=np.float32)
    for seg in pieces:
        seg = np.asarray(seg, dtype=np.float32)
        if not len(seg):
            continue
        if len(out) >= fade and len(seg) > fade:
            joint = seg[:fade] * ramp + out[-fade:] * (1 - ramp)
            out = np.concatenate([out[:-fade], joint, seg[fade:]])
        else:
            out = np.concatenate([out, seg])
        if len(out) >= n:
            break
    return np.pad(out[:n], (0, max(0, n - len(out))))


def shuffle(source, start, n, share: float, rng: np.random.Generator, sr: int, bar_s: float = 2.0) -> np.ndarray:
    """Cut the clip into beats (a quarter bar, 0.3-1 s) and move `share` of them out of order: more
    strength, more of the clip's beats land where they do not belong (a derangement of that subset)."""
    beat = int(min(max(bar_s / 4, 0.3), 1.0) * sr)
    clean = _clean(source, start, n)
    beats = [clean[i:i + beat] for i in range(0, n, beat)]
    if len(beats) < 2:
        return clean
    k = min(len(beats), max(2, int(round(share * len(beats)))))
    chosen = rng.permutation(len(beats))[:k]
    order = list(range(len(beats)))
    for dst, src in zip(chosen, np.roll(chosen, 1)):       # one cycle through the chosen: none stays put
        order[dst] = int(src)
    return _crossfade_concat([beats[i] for i in order], sr, n)


def loop(source, start, n, share: float, rng: np.random.Generator, sr: int, bar_s: float = 2.0) -> np.ndarray:
    """Replace `share` of the clip, from a random point, by one half-bar played over and over."""
    clean = _clean(source, start, n)
    seg_len = max(int(0.5 * bar_s * sr), sr // 8)
    looped = int(share * n)
    at = int(rng.integers(0, max(1, n - looped + 1)))
    seg = clean[at:at + seg_len]
    reps = [seg] * (looped // max(1, len(seg))) + [seg[:looped % max(1, len(seg))]]
    return _crossfade_concat([clean[:at], *reps, clean[at + looped:]], sr, n)


def time_stretch(x: np.ndarray, rate: float, n_fft: int = 1024) -> np.ndarray:
    """Play x `rate` times faster at the same pitch: a phase vocoder (torch.stft / istft; librosa's
    algorithm without its 5 s import). Output length ~ len(x) / rate."""
    import torch

    if len(x) < n_fft:   # a crop that runs past a short clip's end leaves (almost) nothing to stretch
        return np.asarray(x[:int(len(x) / rate)], dtype=np.float32)
    hop = n_fft // 4
    window = torch.hann_window(n_fft)
    spec = torch.stft(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), n_fft, hop, window=window,
                      return_complex=True)                                  # [F, T]
    steps = torch.arange(0, spec.shape[-1] - 1, rate)
    left = steps.floor().long()
    frac = (steps - left)[None]
    mag = (1 - frac) * spec[:, left].abs() + frac * spec[:, left + 1].abs()
    advance = torch.linspace(0, np.pi * hop, spec.shape[0])[:, None]      # expected phase advance per hop
    dphi = spec[:, left + 1].angle() - spec[:, left].angle() - advance
    dphi = dphi - 2 * np.pi * torch.round(dphi / (2 * np.pi))
    phase = torch.cumsum(torch.cat([spec[:, :1].angle(), (advance + dphi)[:, :-1]], dim=1), dim=1)
    out = torch.istft(torch.polar(mag, phase), n_fft, hop, window=window)
    return out.numpy().astype(np.float32)


def tempo_jump(source, start, n, strength: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    """From a random point in the middle half, the music continues 1 + 0.6 * strength times faster
    (same pitch: a phase-vocoder time stretch of what follows in the source)."""
    rate = 1.0 + 0.6 * strength
    at = int(rng.uniform(0.25, 0.75) * n)
    rest = source[start + at:start + at + int((n - at) * rate) + sr // 4]
    return _crossfade_concat([source[start:start + at], time_stretch(rest, rate)], sr, n)


SIGNAL = {"noise": noise, "clipping": clipping, "band_limit": band_limit, "dropouts": dropouts, "warp": warp}
STRUCTURAL = {"shuffle": shuffle, "loop": loop, "tempo_jump": tempo_jump}
