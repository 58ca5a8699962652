"""An uploaded reference song -> the codes of its excerpt, read the way the curation stage reads audio.

    file --curation's probe_and_decode (wav/flac/ogg/mp3, any rate, any channel count)--> [C, n]
         --downmix, resample to the codec's rate, BS.1770 loudness to the corpus level (-23 LUFS)-->
         --trim silence; the excerpt: `seconds` from the middle of the music-->
         --OmniCodec encode--> codes [1, K, R]

Every problem is a ReferenceAudioError naming the file and what is wrong: not audio, corrupt,
truncated, silent, or shorter than the excerpt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from components.common.audio import resample, to_mono
from components.curation.config import CurationConfig
from components.curation.dsp import frame_db, loudness_lufs, normalise_loudness, trim_silence
from components.curation.probe import probe_and_decode
from components.curation.reasons import Rejected
from components.common.errors import LyraError


class ReferenceAudioError(LyraError, ValueError):
    """A reference file that cannot be used, with the file's name and the problem."""


def read_reference(path: str | Path, sample_rate: int, seconds: float) -> np.ndarray:
    """Mono float32 excerpt of `seconds` at `sample_rate` from the music in `path`."""
    path = Path(path)
    rules = CurationConfig()
    if not path.is_file():
        raise ReferenceAudioError(f"reference {path}: no such file")
    try:
        decoded = probe_and_decode(path, max_file_s=rules.max_file_s, min_file_s=0.0, max_channels=rules.max_channels)
    except Rejected as exc:
        raise ReferenceAudioError(f"reference {path.name}: {exc.reason.replace('_', ' ')} ({exc.detail})") from None
    audio = resample(to_mono(decoded.audio), decoded.sample_rate, sample_rate)   # (channels, samples) -> mono
    if audio.size == 0 or not np.isfinite(audio).all() or float(np.max(frame_db(audio, sample_rate))) < rules.silence_dbfs:
        raise ReferenceAudioError(f"reference {path.name}: silent (no frame above {rules.silence_dbfs:g} dBFS)")
    trim = trim_silence(audio, sample_rate, top_db=rules.trim_top_db, pad_s=rules.trim_pad_s)
    music = audio[trim.start:trim.stop]
    need = int(round(seconds * sample_rate))
    if len(music) < need:
        raise ReferenceAudioError(f"reference {path.name}: too short: {len(music) / sample_rate:.2f} s of sound "
                                  f"(after trimming silence), the excerpt needs {seconds:g} s")
    start = (len(music) - need) // 2
    excerpt = music[start:start + need]
    lufs = loudness_lufs(excerpt, sample_rate)
    if np.isfinite(lufs):
        excerpt = normalise_loudness(excerpt, lufs, target_lufs=rules.loudness_target_lufs,
                                     peak_ceiling_dbfs=-1.0).audio
    return excerpt.astype(np.float32)


@torch.no_grad()
def encode_excerpt(codec, audio: np.ndarray, frames: int) -> torch.Tensor:
    """Mono audio at the codec's rate -> codes [1, K, frames] (the codec's frame grid, cut or edge-padded)."""
    device = next(codec.parameters()).device
    codes = codec.encode(torch.from_numpy(np.asarray(audio, np.float32))[None, None].to(device)).cpu()
    if codes.shape[-1] < frames:
        codes = torch.cat([codes, codes[..., -1:].expand(-1, -1, frames - codes.shape[-1])], dim=-1)
    return codes[..., :frames]


def reference_codes(path: str | Path, codec, frames: int, frame_rate: float) -> torch.Tensor:
    """The excerpt of `path` a reference conditioner reads: codes [1, K, frames]."""
    audio = read_reference(path, int(codec.sample_rate), frames / frame_rate)
    return encode_excerpt(codec, audio, frames)
