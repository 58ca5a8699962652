"""Scoring audio with ORAQL: `lyra score FILE|DIR ...`, and the batched reward RLAIF uses.

    lyra score song.wav demos/ --out scores.csv       # one row per file (JSON or CSV by suffix)

A folder contributes every file below it (audio sidecars `<stem>.json` excepted), decoded the way
the curation stage decodes (wav, flac, ogg, mp3, aiff; magic bytes checked first). A file that
cannot be decoded gets a row with its `error` and the others are still scored; the exit status is 1
when any row is an error.

The reward (for RLAIF's trainers, which want `reward(completions) -> list[float]`):

    >>> reward = OraqlReward("data/models/oraql", codec="data/models/omnicodec")
    >>> reward.from_audio([wav_a, wav_b], sample_rate=24000)          # -> [0.62, 0.31]
    >>> reward.from_codes(codes, lengths)                            # [B, K, T] codes, decoded on the way

Scores are ORAQL's `overall` on [0, 1] (1 = like a clean curated clip); `fidelity` and `coherence`
are the signal and musical sub-scores.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from components.common.audio import resample
from components.oraql.model import HEADS, Oraql, load_oraql, log_mel_features

DEFAULT_MODEL = "data/models/oraql"
ROW_FIELDS = ("file", "seconds", *HEADS, "windows", "error")


def windows(audio: np.ndarray, window: int) -> list[np.ndarray]:
    """Windows of `window` samples covering the audio; the last one ends at the end (overlapping the
    one before); audio shorter than a window is one window of its own length."""
    n = len(audio)
    if n <= window:
        return [audio]
    starts = list(range(0, n - window + 1, window))
    if starts[-1] + window < n:
        starts.append(n - window)
    return [audio[s:s + window] for s in starts]


@torch.no_grad()
def score_batch(model: Oraql, audios: list[np.ndarray], sample_rate: int, batch: int = 64) -> np.ndarray:
    """Mono float arrays at `sample_rate` -> [len(audios), 3] scores (overall, fidelity, coherence).

    All windows of all inputs go through the model together, grouped by length."""
    cfg = model.config
    window = int(round(cfg.window_seconds * cfg.sample_rate))
    owner, pieces = [], []
    for i, audio in enumerate(audios):
        x = resample(np.asarray(audio, dtype=np.float32), sample_rate, cfg.sample_rate)
        if len(x) < cfg.n_fft:
            x = np.pad(x, (0, cfg.n_fft - len(x)))
        for w in windows(x, window):
            owner.append(i)
            pieces.append(w)
    scores = np.zeros((len(pieces), len(HEADS)), dtype=np.float32)
    by_length: dict[int, list[int]] = {}
    for j, w in enumerate(pieces):
        by_length.setdefault(len(w), []).append(j)
    model.eval()
    for idx in by_length.values():
        for b in range(0, len(idx), batch):
            chunk = idx[b:b + batch]
            feats = log_mel_features(torch.from_numpy(np.stack([pieces[j] for j in chunk])), cfg)
            scores[chunk] = model.score_features(feats).numpy()
    out = np.zeros((len(audios), len(HEADS)), dtype=np.float32)
    owner = np.asarray(owner)
    for i in range(len(audios)):
        out[i] = scores[owner == i].mean(axis=0)
    return out


def score_waveform(model: Oraql, audio: np.ndarray, sample_rate: int) -> dict:
    s = score_batch(model, [audio], sample_rate)[0]
    return {h: float(v) for h, v in zip(HEADS, s)}


class OraqlReward:
    """ORAQL as a batched reward: audio (or codec codes, decoded on the way) -> overall scores."""

    def __init__(self, model_dir: str | os.PathLike = DEFAULT_MODEL, codec=None):
        self.model = load_oraql(model_dir)
        if isinstance(codec, (str, os.PathLike)):
            from components.omnicodec import load_codec

            codec = load_codec(codec)
        self.codec = codec

    def from_audio(self, audios: list[np.ndarray], sample_rate: int) -> list[float]:
        return [float(s) for s in score_batch(self.model, audios, sample_rate)[:, 0]]

    def from_codes(self, codes: torch.Tensor, lengths: torch.Tensor | None = None) -> list[float]:
        """codes [B, K, T] (frames after a piece's length are ignored) -> B scores."""
        if self.codec is None:
            raise ValueError("OraqlReward needs a codec to score codes")
        from components.omnicodec.decoding import decode_pieces

        lengths = torch.full((codes.shape[0],), codes.shape[-1]) if lengths is None else lengths
        return self.from_audio(decode_pieces(self.codec, codes, lengths), int(self.codec.sample_rate))

    __call__ = from_audio


# ------------------------------------------------------------------------------------ files
def input_files(paths: list[str]) -> list[Path]:
    """Files named, and every file below each folder named (sidecars excepted), in a stable order."""
    from components.curation.discover import discover

    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(i.path for i in discover(p)[0])
        else:
            out.append(p)                      # missing files get an error row too
    return out


def score_files(model: Oraql, files: list[Path], max_file_s: float = 3600.0) -> list[dict]:
    from components.common.audio import to_mono
    from components.curation.probe import probe_and_decode
    from components.curation.reasons import Rejected

    rows = []
    for f in files:
        row = {"file": os.fspath(f), "seconds": None, **{h: None for h in HEADS}, "windows": None, "error": None}
        try:
            if not f.exists():
                raise Rejected("unreadable", "no such file")
            decoded = probe_and_decode(f, max_file_s=max_file_s, min_file_s=0.05, max_channels=64)
            audio = to_mono(decoded.audio)
            if not np.isfinite(audio).all():
                raise Rejected("non_finite", "the audio holds NaN or infinite samples")
            s = score_batch(model, [audio], decoded.sample_rate)[0]
            n_windows = len(windows(resample(audio, decoded.sample_rate, model.config.sample_rate),
                                    int(round(model.config.window_seconds * model.config.sample_rate))))
            row.update({"seconds": round(decoded.duration_s, 3), **{h: round(float(v), 4) for h, v in zip(HEADS, s)},
                        "windows": n_windows})
        except Rejected as exc:
            row["error"] = f"{exc.reason}: {exc.detail}"
        rows.append(row)
    return rows


def render(rows: list[dict], fmt: str) -> str:
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=ROW_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()
    return json.dumps(rows, indent=2) + "\n"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="audio files and/or folders (scored recursively)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="trained ORAQL model folder")
    parser.add_argument("--out", default=None, help="write rows here (.json or .csv); default: print JSON")
    parser.add_argument("--format", choices=("json", "csv"), default=None, help="output format (default: from --out)")
    parser.set_defaults(func=main)


def main(args) -> int:
    from components.common.atomic import atomic_write_text

    model = load_oraql(args.model)
    fmt = args.format or ("csv" if args.out and args.out.lower().endswith(".csv") else "json")
    rows = score_files(model, input_files(args.inputs))
    text = render(rows, fmt)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {len(rows)} row(s) to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    bad = [r for r in rows if r["error"]]
    for r in bad:
        print(f"lyra score: {r['file']}: {r['error']}", file=sys.stderr)
    return 1 if bad else 0


def reward_factory(path: str | os.PathLike, device: str = "cpu") -> OraqlReward:
    """ORAQL as RLAIF's audio scorer: `rlaif.reward: components.oraql.score:reward_factory` with
    `rlaif.reward_model: data/models/oraql` (see components/rlaif/rewards.py)."""
    return OraqlReward(path)
