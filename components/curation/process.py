"""One input file -> curated clips and/or quarantine rows. Never raises.

    probe + decode (channels, samples) @ sr ── non-finite? ── clipping mask (source, before gain)
      ── downmix + resample ──► (samples,) @ 24 kHz ── silent? ── trim leading/trailing silence
      ── segment [clip_s ... clip_s, tail >= min_clip_s]
      ── per clip: mostly silent? clipped? loudness -> gain (target, capped by the peak ceiling)
                   ── fingerprint ──► clips/<clip_id>.wav (PCM16) + manifest row

Clips are written only once the whole file has been processed, so a failure half-way leaves no
orphan clip behind. Near-duplicates are found later, across files, in `curate.py`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import re
import time
import traceback
import unicodedata
from pathlib import Path, PurePosixPath

from components.common.atomic import STORAGE_ERRORS

import numpy as np
import soundfile as sf

from components.common.audio import resample, to_mono
from components.curation import dsp
from components.common.splits import FRACTION_SPLITS, SPLITS
from components.curation.metadata import embedded_tags, merge
from components.curation.config import CurationConfig
from components.curation.discover import InputFile
from components.curation.fingerprint import fingerprint, to_hex
from components.curation.probe import probe_and_decode
from components.curation.reasons import Rejected

# sidecar keys promoted to manifest columns (the demo corpus writes all of them)
SIDECAR_COLUMNS = ("title", "composer", "collection", "instrument", "program", "key", "mode", "meter", "tempo_bpm")


@dataclasses.dataclass
class FileOutcome:
    source_file: str
    clips: list[dict]            # manifest rows, in segment order (fingerprint as hex)
    quarantined: list[dict]      # quarantine rows (whole file: clip_id "")
    source_seconds: float = 0.0  # decoded audio duration (0 when it never decoded)
    wall_seconds: float = 0.0


def quarantine_row(source_file: str, reason: str, detail: str, clip_id: str = "") -> dict:
    return {"source_file": source_file, "clip_id": clip_id, "reason": reason, "detail": detail}


def clip_id_for(rel: str, segment_index: int) -> str:
    """`<stem>-<8 hex of the relative path>-<segment>`: readable, and unique across subfolders."""
    stem = unicodedata.normalize("NFKD", Path(rel).stem).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "clip"
    digest = hashlib.sha1(rel.encode("utf-8")).hexdigest()[:8]
    return f"{slug[:80]}-{digest}-{segment_index:03d}"


def hash_split(piece_id: str, fractions: dict[str, float]) -> str:
    """A stable split from the piece id alone: u = sha1(piece_id) in [0, 1) against the cumulative fractions."""
    u = int(hashlib.sha1(piece_id.encode("utf-8")).hexdigest()[:12], 16) / 16 ** 12
    edge = 0.0
    for split in FRACTION_SPLITS:
        edge += fractions[split]
        if u < edge:
            return split
    return FRACTION_SPLITS[-1]


def read_sidecar(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected("bad_sidecar", f"{path.name}: {type(exc).__name__}: {exc}") from None
    if not isinstance(meta, dict):
        raise Rejected("bad_sidecar", f"{path.name}: a JSON {type(meta).__name__}, not an object")
    return meta


def piece_and_split(item: InputFile, meta: dict, config: CurationConfig) -> tuple[str, str]:
    """The piece id (sidecar `piece_id`, else the file's path without its extension) and the split: a given `split` wins; otherwise the
    hash of the file's group (split_group), so every file of one album, artist or work lands in one split."""
    piece_id = meta.get("piece_id")
    # the file's path without its extension: "01 Track 1" is a name many albums share, "Artist/Album/01 Track 1" is not
    piece_id = str(piece_id) if isinstance(piece_id, (str, int)) and str(piece_id) else item.rel.rsplit(".", 1)[0] \
        if "." in PurePosixPath(item.rel).name else item.rel
    split = meta.get("split")
    return piece_id, split if split in SPLITS else hash_split(split_group(piece_id, meta, config.split_by),
                                                              config.split_fractions)


def ensure_held_out(rows: list[dict], config: CurationConfig) -> list[str]:
    """A small library hashed by album can leave valid or test without a single group, and then nothing can be
    selected or reported. For each of valid / test with a positive fraction and no clip, the smallest train group
    (fewest clips; ties by the group's hash) moves there, when at least 3 groups were hash-assigned. Given splits
    are never moved. Changes the rows' split in place (every hash-assigned row's split is recomputed, so a run
    that reuses a previous run's rows ends where a fresh one does); returns "group -> split" for each move."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        meta = json.loads(row["meta"]) if isinstance(row.get("meta"), str) else {}
        if meta.get("split") in SPLITS:
            continue
        group = split_group(row["piece_id"], meta, config.split_by)
        row["split"] = hash_split(group, config.split_fractions)   # as a fresh run says (a reused row may be moved)
        groups.setdefault(group, []).append(row)
    if len(groups) < 3:
        return []
    present = {row["split"] for row in rows}
    moves = []
    for split in ("valid", "test"):
        if split in present or config.split_fractions.get(split, 0) <= 0:
            continue
        train = [g for g, members in groups.items() if members[0]["split"] == "train"]
        if len(train) < 2:
            break
        group = min(train, key=lambda g: (len(groups[g]), hashlib.sha1(g.encode("utf-8")).hexdigest()))
        for row in groups[group]:
            row["split"] = split
        present.add(split)
        moves.append(f"{group} -> {split}")
    return moves


def split_group(piece_id: str, meta: dict, split_by: str) -> str:
    """What files share a split. auto: the album (with its artist) when the file names one, else the piece."""
    def field(name: str) -> str:
        value = meta.get(name)
        return str(value).strip() if isinstance(value, (str, int, float)) and str(value).strip() else ""

    album = field("album") and f"album:{field('artist')}/{field('album')}"
    group = {"auto": album, "album": album, "artist": field("artist") and f"artist:{field('artist')}",
             "work": field("work") and f"work:{field('work')}", "piece": ""}[split_by]
    return group or piece_id


def process_file(item: InputFile, clips_dir: Path, config: CurationConfig) -> FileOutcome:
    """Curate one file; every failure becomes a quarantine row (a crash of the process is handled by the runner)."""
    start = time.perf_counter()
    outcome = FileOutcome(item.rel, [], [])
    try:
        _curate(item, clips_dir, config, outcome)
    except Rejected as rejected:
        _discard_clips(outcome, clips_dir)
        outcome.quarantined = [quarantine_row(item.rel, rejected.reason, rejected.detail)]
    except Exception as exc:  # noqa: BLE001 - the point is that nothing escapes
        _discard_clips(outcome, clips_dir)
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRORS:
            raise          # a full disk or a failing device is the run's problem, not the file's: never quarantine
        where = traceback.extract_tb(exc.__traceback__)[-1]
        outcome.quarantined = [quarantine_row(
            item.rel, "error", f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})"[:500])]
    outcome.wall_seconds = time.perf_counter() - start
    return outcome


def _discard_clips(outcome: FileOutcome, clips_dir: Path) -> None:
    """A file is curated whole or not at all: remove clips already written before the failure."""
    for row in outcome.clips:
        (clips_dir / f"{row['clip_id']}.wav").unlink(missing_ok=True)
    outcome.clips = []


def sidecar_columns(meta: dict) -> dict:
    """The known sidecar keys as typed columns (program int, tempo float, the rest text); bad values -> None."""
    out = {}
    for key in SIDECAR_COLUMNS:
        value = meta.get(key)
        try:
            if value is None or isinstance(value, (dict, list)):
                value = None
            elif key == "program":
                value = int(value)
            elif key == "tempo_bpm":
                value = float(value) if math.isfinite(float(value)) else None
            else:
                value = str(value)
        except (TypeError, ValueError):
            value = None
        out[key] = value
    return out


def _decode(item: InputFile, config: CurationConfig):
    """The file's audio at its own rate, or Rejected (not audio, undecodable)."""
    if not item.is_audio:
        suffix = item.path.suffix or "(none)"
        orphan = suffix.lower() == ".json"
        what = "an orphan sidecar (no audio file with this stem)" if orphan else "not an audio extension"
        raise Rejected("unsupported_format", f"extension {suffix}: {what}")
    return probe_and_decode(item.path, max_file_s=config.max_file_s, min_file_s=config.min_clip_s,
                            max_channels=config.max_channels)


def _audible(decoded, config: CurationConfig):
    """Mono at the target rate in the audible band, and where its sound starts and stops; Rejected when
    nothing can be heard or too little remains after trimming silence."""
    sr = config.sample_rate
    # what can be heard: a DC offset or sub-audible drift has level but no content. The mean goes
    # before resampling too: the resampler's edges would turn a constant into two clicks
    centred = decoded.audio - decoded.audio.mean(axis=-1, keepdims=True)
    mono = dsp.audible_band(resample(to_mono(centred), decoded.sample_rate, sr), sr, config.audible_low_hz)
    trim = dsp.trim_silence(mono, sr, top_db=config.trim_top_db, pad_s=config.trim_pad_s)
    if trim.loudest_db < config.silence_dbfs:
        raw = to_mono(decoded.audio)
        raw_loudest = float(dsp.frame_db(raw, decoded.sample_rate).max()) if raw.size else -200.0
        if raw_loudest >= config.silence_dbfs:
            raise Rejected("no_content", f"loudest 50 ms frame at {raw_loudest:.1f} dBFS, but {trim.loudest_db:.1f} "
                                         f"dBFS above {config.audible_low_hz:g} Hz (< silence_dbfs="
                                         f"{config.silence_dbfs:g}): a DC offset, a repeated sample value or "
                                         "sub-audible motion")
        raise Rejected("silent", f"loudest 50 ms frame at {trim.loudest_db:.1f} dBFS "
                                 f"< silence_dbfs={config.silence_dbfs:g}")
    music = mono[trim.start:trim.stop]
    if len(music) < config.min_clip_s * sr:
        raise Rejected("too_short", f"{len(music) / sr:.2f} s of sound after trimming silence "
                                    f"(< min_clip_s={config.min_clip_s:g})")
    return music, trim


def _clip_problem(clip: np.ndarray, active: float, clip_lufs: float, clipped_fraction: float,
                  config: CurationConfig) -> tuple[str, str] | None:
    """Why a segment cannot be a clip before normalisation (reason, detail), or None."""
    if active < config.min_active_fraction:
        return "silent", (f"only {100 * active:.0f}% of the clip is sound "
                          f"(< min_active_fraction={config.min_active_fraction:g})")
    if not math.isfinite(clip_lufs) or config.loudness_target_lufs - clip_lufs > config.max_gain_db:
        return "silent", (f"clip loudness {clip_lufs:.1f} LUFS would need more than "
                          f"max_gain_db={config.max_gain_db:g} dB")
    if clipped_fraction > config.max_clipped_fraction:
        return "clipped", (f"{100 * clipped_fraction:.2f}% of samples in clipped runs "
                           f"(> max_clipped_fraction={config.max_clipped_fraction:g})")
    return None


def _curate(item: InputFile, clips_dir: Path, config: CurationConfig, outcome: FileOutcome) -> None:
    decoded = _decode(item, config)
    outcome.source_seconds = decoded.duration_s
    meta = merge(read_sidecar(item.sidecar), *embedded_tags(item.path), table=item.table)
    piece_id, split = piece_and_split(item, meta, config)
    bad = ~np.isfinite(decoded.audio)
    if bad.any():
        raise Rejected("non_finite", f"{int(bad.sum())} NaN/inf samples of {decoded.audio.size}")
    src_rate, sr = decoded.sample_rate, config.sample_rate
    clipped = dsp.clipped_mask(decoded.audio, config.clip_level, config.clip_run)   # (source samples,)
    music, trim = _audible(decoded, config)
    source_lufs = dsp.loudness_lufs(music, sr)
    low, high = config.loudness_range

    pending: list[tuple[dict, np.ndarray]] = []
    for index, (s, e) in enumerate(dsp.segment_bounds(len(music), sr, config.clip_s, config.min_clip_s)):
        clip_id = clip_id_for(item.rel, index)
        clip = music[s:e]
        start_s, duration_s = (trim.start + s) / sr, (e - s) / sr
        a, b = int(start_s * src_rate), int(math.ceil((start_s + duration_s) * src_rate))
        clipped_fraction = float(clipped[a:b].mean()) if b > a else 0.0
        clip_lufs = dsp.loudness_lufs(clip, sr)
        problem = _clip_problem(clip, dsp.active_fraction(clip, sr, trim.threshold_db), clip_lufs, clipped_fraction,
                                config)
        if problem is None:
            norm = dsp.normalise_loudness(clip, clip_lufs, target_lufs=config.loudness_target_lufs,
                                          peak_ceiling_dbfs=config.peak_ceiling_dbfs)
            if not low <= norm.loudness_lufs <= high:
                problem = "loudness_out_of_range", (f"peak ceiling {config.peak_ceiling_dbfs:g} dBFS holds the clip "
                                                    f"at {norm.loudness_lufs:.1f} LUFS, outside [{low:g}, {high:g}]")
        if problem is not None:
            outcome.quarantined.append(quarantine_row(item.rel, *problem, clip_id))
            continue
        pending.append(({
            "clip_id": clip_id, "path": f"clips/{clip_id}.wav", "source_file": item.rel,
            "piece_id": piece_id, "split": split, "segment_index": index,
            "start_s": round(start_s, 4), "duration_s": round(duration_s, 4),
            "source_duration_s": round(decoded.duration_s, 4), "sample_rate": sr,
            "loudness_lufs": round(norm.loudness_lufs, 3),
            "source_loudness_lufs": round(source_lufs, 3) if math.isfinite(source_lufs) else None,
            "gain_db": round(norm.gain_db, 3), "peak_dbfs": round(norm.peak_dbfs, 3),
            "clipped_fraction": clipped_fraction, "fingerprint": to_hex(fingerprint(norm.audio, sr)),
            "meta": json.dumps(meta, sort_keys=True, default=str), **sidecar_columns(meta),
        }, norm.audio))
    _write_clips(pending, clips_dir, sr, outcome)


def _write_clips(pending: list[tuple[dict, np.ndarray]], clips_dir: Path, sr: int, outcome: FileOutcome) -> None:
    """Written once every segment of the file is judged: an error while judging leaves none of its clips behind."""
    for row, audio in pending:
        path = clips_dir / f"{row['clip_id']}.wav"
        try:
            write_clip(path, audio, sr)
        except BaseException:
            path.unlink(missing_ok=True)  # no half-written clip is left behind
            raise
        outcome.clips.append(row)


def write_clip(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """PCM16 wav, written in place: clips_dir sits inside the stage's private staging folder, which
    replaces the output as a whole (atomic_dir), so a per-file temp + fsync (write_wav) would only
    add ~10 ms per clip. Encoded in memory and written by Python: libsndfile reports a full disk as
    "System error.", Python's write as ENOSPC with the file's name, which stops the run instead of
    quarantining a good file (process_file)."""
    buffer = io.BytesIO()
    sf.write(buffer, audio, sample_rate, subtype="PCM_16", format="WAV")
    with open(path, "wb") as fh:
        fh.write(buffer.getbuffer())
