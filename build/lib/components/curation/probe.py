"""Open an arbitrary file as audio, or say precisely why it is not usable.

    bytes on disk ── sniff ──► container (wav/flac/ogg/mp3/aiff) or not_audio / empty
                  ── header ─► rate, channels, frames    or corrupt / bad_shape / too_long / too_short
                  ── intact? ► WAV data chunk complete, Ogg ends on an end-of-stream page
                  ── decode ─► float32 (channels, samples), block by block; a decoder error
                               after some audio, or fewer frames than declared = truncated

The magic bytes are checked before any decoder sees the file: libmpg123 happily "finds"
MPEG frames in random binary, so an image renamed .mp3 must never reach it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

from components.curation.reasons import Rejected

MAX_SAMPLE_RATE = 768_000
BLOCK_FRAMES = 1 << 16


def sniff(head: bytes) -> str | None:
    """The audio container the first bytes announce, or None."""
    if head[:4] in (b"RIFF", b"RIFX") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] in (b"RF64", b"BW64") or head[:4] == b"riff":  # RF64 / Wave64
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:3] == b"ID3":   # an ID3v2 tag: mp3 (or, rarely, a tagged flac) follows
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x06) != 0:
        return "mp3"          # MPEG audio frame sync with a valid layer
    return None


def describe_bytes(head: bytes) -> str:
    """A guess at what a non-audio file is, for the quarantine detail."""
    if head.startswith(b"\x89PNG"):
        return "a PNG image"
    if head[:3] == b"\xff\xd8\xff":
        return "a JPEG image"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head[:2] == b"PK":
        return "a ZIP archive"
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "unrecognised binary data"


@dataclasses.dataclass
class Decoded:
    audio: np.ndarray     # (channels, samples) float32
    sample_rate: int
    container: str
    subtype: str

    @property
    def duration_s(self) -> float:
        return self.audio.shape[1] / self.sample_rate


def _wav_problem(path: Path, size: int) -> Rejected | None:
    """For RIFF/WAVE, read the chunks libsndfile would trust: fmt's channel count, data's size.

    libsndfile quietly shortens a WAV whose data chunk runs past the end of the file, so a
    truncated copy would otherwise look like a shorter, healthy file.
    """
    with open(path, "rb") as fh:
        if fh.read(4) != b"RIFF":
            return None  # RF64/Wave64 keep sizes elsewhere; left to libsndfile and the frame-count check
        offset = 12
        while offset + 8 <= size:
            fh.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
            if chunk_id == b"fmt " and chunk_size >= 4:
                channels = struct.unpack("<HH", fh.read(4))[1]
                if channels == 0:
                    return Rejected("bad_shape", "WAV header declares 0 channels")
            if chunk_id == b"data":
                available = size - offset - 8
                # 0 and 0xFFFFFFFF are what streaming writers put when they do not know the size yet
                if chunk_size not in (0, 0xFFFFFFFF) and chunk_size > available:
                    return Rejected("truncated", f"WAV data chunk declares {chunk_size} bytes, only {available} "
                                                 f"present ({100 * available / chunk_size:.0f}%)")
                return None
            offset += 8 + chunk_size + (chunk_size & 1)
    return None


def _ogg_truncation(path: Path, size: int) -> str | None:
    """An Ogg stream ends on a page with the end-of-stream flag; a cut-off file does not."""
    with open(path, "rb") as fh:
        fh.seek(max(0, size - 65536))
        tail = fh.read()
    last = tail.rfind(b"OggS")
    if last < 0 or last + 5 >= len(tail):
        return "no Ogg page found at the end of the file"
    if not tail[last + 5] & 0x04:
        return "the last Ogg page is not marked end-of-stream"
    return None


def _message(exc: Exception, path: Path) -> str:
    """The decoder's message without the absolute path (quarantine rows must not leak machine paths)."""
    return re.sub(r"^Error opening .*?: ", "", str(exc)).replace(os.fspath(path), path.name)


def probe_and_decode(path: Path, *, max_file_s: float, min_file_s: float, max_channels: int) -> Decoded:
    """Decode `path` to float32 or raise Rejected with the reason."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise Rejected("unreadable", f"{type(exc).__name__}: {exc.strerror or exc}") from None
    if size == 0:
        raise Rejected("empty", "0 bytes")
    container = sniff(head)
    if container is None:
        raise Rejected("not_audio", f"{path.suffix or 'no'} extension but the content is {describe_bytes(head)}")
    problem = _wav_problem(path, size) if container == "wav" else None
    if problem is not None:
        raise problem
    try:
        # soundfile is handed open file objects, not names: it cannot encode names that are not valid UTF-8
        with open(path, "rb") as raw:
            info = sf.info(raw)
    except Exception as exc:  # libsndfile raises its own error types, and RuntimeError / TypeError on odd input
        raise Rejected("corrupt", f"{container} container, header unreadable: {_message(exc, path)}") from None
    if info.channels < 1 or info.channels > max_channels:
        raise Rejected("bad_shape", f"{info.channels} channels (allowed 1..{max_channels})")
    if not 1000 <= info.samplerate <= MAX_SAMPLE_RATE:
        raise Rejected("bad_shape", f"sample rate {info.samplerate} Hz")
    declared_s = info.frames / info.samplerate
    if declared_s > max_file_s:
        raise Rejected("too_long", f"{declared_s:.1f} s > max_file_s={max_file_s:g}")

    truncation = _ogg_truncation(path, size) if container == "ogg" else None
    if truncation:
        raise Rejected("truncated", truncation)
    if info.frames == 0:
        raise Rejected("empty", f"valid {container} header but no audio frames")

    blocks, decoded = [], 0
    limit = int(max_file_s * info.samplerate * 1.05) + BLOCK_FRAMES  # headers can under-declare (mp3 estimates)
    try:
        with open(path, "rb") as raw, sf.SoundFile(raw) as fh:
            while True:
                block = fh.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
                if not len(block):
                    break
                blocks.append(block)
                decoded += len(block)
                if decoded > limit:
                    raise Rejected("too_long", f"decodes to more than max_file_s={max_file_s:g} s "
                                               f"(header declared {declared_s:.1f} s)")
    except Rejected:
        raise
    except Exception as exc:
        if decoded > 0:
            raise Rejected("truncated", f"decoder failed after {decoded / info.samplerate:.2f} s of "
                                        f"{declared_s:.2f} s declared: {_message(exc, path)}") from None
        raise Rejected("corrupt", f"{container} container, no audio could be decoded: {_message(exc, path)}") from None
    # mp3 frame counts are estimates and codecs pad/delay: allow 2% + 0.1 s before calling it short
    if decoded < info.frames * 0.98 - 0.1 * info.samplerate:
        raise Rejected("truncated", f"decoded {decoded / info.samplerate:.2f} s of the "
                                    f"{declared_s:.2f} s the header declares")
    if decoded / info.samplerate < min_file_s:
        raise Rejected("too_short", f"{decoded / info.samplerate:.3f} s < min_clip_s={min_file_s:g}")
    audio = np.ascontiguousarray(np.concatenate(blocks).T)  # (channels, samples)
    return Decoded(audio, int(info.samplerate), container, str(info.subtype))
