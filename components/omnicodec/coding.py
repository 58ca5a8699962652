"""Encode a user's audio file to codes and decode codes back to audio (`lyra codec encode|decode`).

Any rate and channel count goes in: the audio is downmixed to mono and resampled to the codec's
rate. The codes file is a small .npz:

    codes          uint16 [K', frames]   indices into each of the first K' codebooks
    sample_rate    the codec's rate; num_samples the length to trim the decoded audio to
    source_sample_rate / source_channels   what the input file was
    bitrate_bps, frame_rate, codebook_size  what the stream costs / needs to be decoded
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from components.common.atomic import atomic_path
from components.common.audio import read_audio, resample, to_mono, write_wav
from components.omnicodec.model import load_codec
from components.common.errors import LyraError


class CodingError(LyraError, ValueError):
    """An input that cannot be encoded/decoded (unreadable audio, wrong codes file, bad bitrate)."""


def choose_n_quantizers(codec, *, n_quantizers: int | None, bitrate_kbps: float | None) -> int:
    """Explicit n, else the most codebooks whose bitrate fits `bitrate_kbps`, else all."""
    if n_quantizers is not None:
        if not 1 <= n_quantizers <= codec.num_codebooks:
            raise CodingError(f"--n-quantizers must be in 1..{codec.num_codebooks}")
        return n_quantizers
    if bitrate_kbps is None:
        return codec.num_codebooks
    per_codebook_kbps = codec.bitrate(1) / 1000.0
    n = min(codec.num_codebooks, math.floor(bitrate_kbps / per_codebook_kbps + 1e-9))
    if n < 1:
        raise CodingError(f"--bitrate {bitrate_kbps} kbps is below one codebook ({per_codebook_kbps:.3g} kbps)")
    return n


def encode_file(path: Path, model_dir: Path, out: Path, *, n_quantizers: int | None = None,
                bitrate_kbps: float | None = None) -> dict:
    codec = load_codec(model_dir)
    n = choose_n_quantizers(codec, n_quantizers=n_quantizers, bitrate_kbps=bitrate_kbps)
    try:
        audio, sr = read_audio(path)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise CodingError(f"cannot read audio from {path}: {exc}") from exc
    if audio.size == 0:
        raise CodingError(f"{path} holds no samples")
    mono = resample(to_mono(audio), sr, codec.sample_rate)
    if not np.isfinite(mono).all():
        raise CodingError(f"{path} holds NaN or infinite samples")
    with torch.inference_mode():
        codes = codec.encode(torch.from_numpy(np.ascontiguousarray(mono))[None, None], n_quantizers=n)[0]
    with atomic_path(out, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh, codes=codes.numpy().astype(np.uint16), sample_rate=codec.sample_rate, num_samples=len(mono),
                source_sample_rate=sr, source_channels=audio.shape[0], bitrate_bps=codec.bitrate(n),
                frame_rate=codec.frame_rate, codebook_size=codec.codebook_size,
            )
    return {"codes": str(out), "n_quantizers": n, "frames": int(codes.shape[-1]),
            "bitrate_kbps": round(codec.bitrate(n) / 1000.0, 3), "seconds": round(len(mono) / codec.sample_rate, 3)}


def decode_file(path: Path, model_dir: Path, out: Path, *, sample_rate: int | None = None) -> dict:
    codec = load_codec(model_dir)
    try:
        data = np.load(path)
        codes, num_samples = data["codes"].astype(np.int64), int(data["num_samples"])
    except (OSError, ValueError, KeyError) as exc:
        raise CodingError(f"{path} is not a codes file written by `lyra codec encode`: {exc}") from exc
    if codes.ndim != 2 or not 1 <= codes.shape[0] <= codec.num_codebooks:
        raise CodingError(f"{path}: codes of shape {codes.shape} do not fit a {codec.num_codebooks}-codebook model")
    if int(data["codebook_size"]) != codec.codebook_size or codes.max(initial=0) >= codec.codebook_size:
        raise CodingError(f"{path} was made with codebooks of {int(data['codebook_size'])} entries; "
                          f"this model has {codec.codebook_size}")
    with torch.inference_mode():
        audio = codec.decode(torch.from_numpy(codes)[None])[0, 0, :num_samples].numpy()
    rate = sample_rate or codec.sample_rate
    audio = np.clip(resample(audio, codec.sample_rate, rate), -1.0, 1.0)
    write_wav(out, audio, rate)
    return {"audio": str(out), "sample_rate": rate, "seconds": round(len(audio) / rate, 3),
            "n_quantizers": int(codes.shape[0])}
