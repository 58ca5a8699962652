"""Random crops of curated clips, as a pure function of (seed, step, rank).

The batch of step s on rank r is drawn from a generator seeded with (seed, s, r), so the
"sampler position" of a resumed run is just the step: resuming at step s yields exactly the
batches an uninterrupted run would have seen, whatever the number of DataLoader workers.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from torch.utils.data import DataLoader, Dataset

from components.common.audio import resample
from components.common.seeds import rng as seeded_rng
from components.common.errors import LyraError

MANIFEST = "manifest.parquet"


class DataError(LyraError, ValueError):
    """Curated input that cannot be trained or evaluated on (missing manifest, no clips in a split)."""


@dataclasses.dataclass(frozen=True)
class Clip:
    clip_id: str
    path: Path
    frames: int          # length in samples at the file's own rate
    sample_rate: int


def read_manifest(curated: str | Path) -> pd.DataFrame:
    path = Path(curated) / MANIFEST
    if not path.is_file():
        raise DataError(f"{curated}: no {MANIFEST}; run `lyra curate` first")
    manifest = pd.read_parquet(path)
    missing = {"clip_id", "path", "split"} - set(manifest.columns)
    if missing:
        raise DataError(f"{path}: missing columns {sorted(missing)}")
    return manifest


def split_clips(curated: str | Path, splits: tuple[str, ...]) -> tuple[str, list[Clip]]:
    """Clips of the first split in `splits` that has any, sorted by clip_id -> (split used, clips)."""
    manifest = read_manifest(curated)
    for split in splits:
        rows = manifest[manifest["split"] == split].sort_values("clip_id")
        if len(rows):
            clips = []
            for row in rows.itertuples():
                path = Path(curated) / row.path
                if not path.is_file():
                    raise DataError(f"{curated}: manifest lists {row.path} but the file is missing")
                info = sf.info(str(path))
                clips.append(Clip(str(row.clip_id), path, int(info.frames), int(info.samplerate)))
            return split, clips
    raise DataError(f"{curated}: no clips in split(s) {', '.join(splits)}")


def read_segment(clip: Clip, start_s: float, seconds: float | None, sample_rate: int) -> np.ndarray:
    """Mono float32 samples of `clip` from start_s for `seconds` (None = to the end), at `sample_rate`."""
    start = int(round(start_s * clip.sample_rate))
    stop = None if seconds is None else min(clip.frames, start + int(round(seconds * clip.sample_rate)))
    data, sr = sf.read(str(clip.path), start=start, stop=stop, dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    return resample(mono, sr, sample_rate)


class CropBatches(Dataset):
    """Item s = the batch of step s for this rank: [batch_size, 1, crop_samples] float32."""

    def __init__(self, clips: list[Clip], *, batch_size: int, crop_samples: int, sample_rate: int, seed: int,
                 rank: int = 0, steps: int = 0):
        if not clips:
            raise DataError("no training clips")
        self.clips, self.batch_size, self.crop_samples = clips, batch_size, crop_samples
        self.sample_rate, self.seed, self.rank, self.steps = sample_rate, seed, rank, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int) -> torch.Tensor:
        rng = seeded_rng(self.seed, step, self.rank)
        crops = np.zeros((self.batch_size, 1, self.crop_samples), dtype=np.float32)
        for i in range(self.batch_size):
            clip = self.clips[int(rng.integers(len(self.clips)))]
            crop_s = self.crop_samples / self.sample_rate
            duration_s = clip.frames / clip.sample_rate
            start_s = float(rng.uniform(0, max(0.0, duration_s - crop_s)))
            audio = read_segment(clip, start_s, crop_s, self.sample_rate)[: self.crop_samples]
            crops[i, 0, : len(audio)] = audio
        return torch.from_numpy(crops)


def crop_loader(dataset: CropBatches, start_step: int, num_workers: int = 0) -> DataLoader:
    """Batches for steps start_step, start_step + 1, ... (the dataset already batches)."""
    return DataLoader(dataset, batch_size=None, sampler=range(start_step, len(dataset)), num_workers=num_workers,
                      persistent_workers=False, pin_memory=torch.cuda.is_available())


def fixed_crops(clips: list[Clip], n: int, seconds: float, sample_rate: int) -> torch.Tensor:
    """The first `seconds` of up to `n` clips (zero-padded), [n, 1, samples]: a fixed monitoring set."""
    samples = int(seconds * sample_rate)
    out = np.zeros((min(n, len(clips)), 1, samples), dtype=np.float32)
    for i, clip in enumerate(clips[: len(out)]):
        audio = read_segment(clip, 0.0, seconds, sample_rate)[:samples]
        out[i, 0, : len(audio)] = audio
    return torch.from_numpy(out)
