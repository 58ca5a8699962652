"""`lyra tokens build`: encode every curated clip once with a codec version into token shards.

Shards are independent units of work: each has a content key (codec digest + its clips'
audio digests), is encoded by its own worker, and is reused as-is by the next build when its
key is unchanged, so rebuilding with the same codec and corpus encodes nothing. Clips have a
content key too (clip_keys.parquet): a shard whose membership changed (files added to the
library shift the sorted plan) takes the codes of its unchanged clips from the previous build and
encodes only the new and changed ones.
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from components.common.atomic import link_or_copy
from components.common.lineage import file_digest, tree_digest
from components.tokens.config import TokensConfig
from components.tokens.shards import (
    SHARD_DIR, ClipTokens, finalize_index, known_instrument, plan_shards, shard_key, shard_name, write_meta, write_shard,
)

from components.common.errors import LyraError


class TokenBuildError(LyraError, ValueError):
    """Inputs that cannot make a consistent token dataset (e.g. clips without captions)."""


CLIP_KEYS = "clip_keys.parquet"


@dataclasses.dataclass(frozen=True)
class ShardJob:
    number: int
    key: str
    clip_ids: tuple[str, ...]
    clip_paths: tuple[str, ...]
    clip_keys: tuple[str, ...] = ()
    # clip_id -> (previous shard file, offset, n_frames) of clips whose codes the previous build already has
    reusable: dict = dataclasses.field(default_factory=dict, hash=False, compare=False)


def load_corpus(curated: Path, captions_dir: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Manifest rows joined with their captions; embeddings reordered to match the manifest."""
    manifest = pd.read_parquet(curated / "manifest.parquet")
    captions = pd.read_parquet(captions_dir / "captions.parquet")
    embeddings = np.load(captions_dir / "embeddings.npy", mmap_mode="r")
    if len(captions) != len(embeddings):
        raise TokenBuildError(f"captions.parquet has {len(captions)} rows but embeddings.npy has {len(embeddings)}")
    row_of = {cid: i for i, cid in enumerate(captions["clip_id"])}
    missing = [c for c in manifest["clip_id"] if c not in row_of]
    if missing:
        raise TokenBuildError(f"{len(missing)} curated clips have no caption (e.g. {missing[:3]}); re-run `lyra caption`")
    order = [row_of[c] for c in manifest["clip_id"]]
    merged = manifest.merge(captions[["clip_id", "captions"]], on="clip_id", how="left")
    return merged, np.asarray(embeddings[order], dtype=np.float32)


def plan_jobs(manifest: pd.DataFrame, curated: Path, codec_digest: str, clips_per_shard: int,
              n_quantizers: int) -> list[ShardJob]:
    path_of = dict(zip(manifest["clip_id"], manifest["path"]))
    jobs = []
    for number, ids in enumerate(plan_shards(list(path_of), clips_per_shard)):
        paths = tuple(str(curated / path_of[c]) for c in ids)
        digests = [(c, file_digest(p)) for c, p in zip(ids, paths)]
        key = shard_key(codec_digest, digests, n_quantizers)
        clip_keys = tuple(shard_key(codec_digest, [pair], n_quantizers) for pair in digests)
        jobs.append(ShardJob(number, key, tuple(ids), paths, clip_keys))
    return jobs


# --- worker side: one codec per process, loaded once
_CODEC = None


def _init_worker(codec_dir: str, device: str, threads: int) -> None:
    global _CODEC
    import torch

    from components.omnicodec import load_codec

    torch.set_num_threads(threads)
    _CODEC = load_codec(codec_dir).to(device)


def _encode_clips(paths: tuple[str, ...], batch_size: int, n_quantizers: int | None, device: str) -> list[np.ndarray]:
    import torch

    from components.common.audio import read_audio, resample, to_mono

    waves = []
    for p in paths:
        audio, sr = read_audio(p)
        waves.append(resample(to_mono(audio), sr, _CODEC.sample_rate))
    codes: list[np.ndarray | None] = [None] * len(waves)
    by_length: dict[int, list[int]] = {}
    for i, w in enumerate(waves):
        by_length.setdefault(len(w), []).append(i)
    with torch.inference_mode():
        for idxs in by_length.values():
            for start in range(0, len(idxs), batch_size):
                chunk = idxs[start:start + batch_size]
                batch = torch.from_numpy(np.stack([waves[i] for i in chunk]))[:, None, :].to(device)  # [B, 1, T]
                out = _CODEC.encode(batch, n_quantizers=n_quantizers).cpu().numpy()               # [B, K, frames]
                for j, i in enumerate(chunk):
                    codes[i] = out[j]
    return codes


def _build_shard(job: ShardJob, shard_dir: str, batch_size: int, n_quantizers: int | None, device: str) -> list[dict]:
    """Encode the shard's new clips, take the others' codes from the previous build, write the shard."""
    fresh = [i for i, c in enumerate(job.clip_ids) if c not in job.reusable]
    encoded = dict(zip(fresh, _encode_clips(tuple(job.clip_paths[i] for i in fresh), batch_size, n_quantizers, device)))
    codes = [encoded[i] if i in encoded else _previous_codes(*job.reusable[c]) for i, c in enumerate(job.clip_ids)]
    rows = write_shard(Path(shard_dir) / shard_name(job.number), list(zip(job.clip_ids, codes)), _CODEC.codebook_size)
    return [{**r, "shard": job.number, "encoded": i in encoded} for i, r in enumerate(rows)]


def _previous_codes(shard: str, offset: int, n_frames: int) -> np.ndarray:
    """[K, n_frames] of one clip in a previous build's shard (stored frame-major)."""
    return np.array(np.load(shard, mmap_mode="r")[offset:offset + n_frames].T)


def previous_build(out: Path) -> tuple[dict, pd.DataFrame | None]:
    """meta.json and index (with each clip's content key, where recorded) of the build at `out`, if any."""
    try:
        meta = json.loads((out / "meta.json").read_text())
        index = pd.read_parquet(out / "index.parquet")
    except (OSError, ValueError):
        return {}, None
    try:
        index = index.merge(pd.read_parquet(out / CLIP_KEYS), on="clip_id", how="left")
    except (OSError, ValueError):
        index = index.assign(clip_key=None)
    return meta, index


def reusable_clips(job: ShardJob, prev_out: Path, prev_index: pd.DataFrame | None) -> dict:
    """clip_id -> where the previous build holds its codes, for the job's clips with an unchanged content key."""
    if prev_index is None:
        return {}
    wanted = dict(zip(job.clip_ids, job.clip_keys))
    rows = prev_index[prev_index["clip_id"].isin(list(wanted))]
    return {r.clip_id: (str(prev_out / SHARD_DIR / shard_name(int(r.shard))), int(r.offset), int(r.n_frames))
            for r in rows.itertuples() if r.clip_key == wanted[r.clip_id]
            and (prev_out / SHARD_DIR / shard_name(int(r.shard))).is_file()}


def reusable_from(job: ShardJob, earlier: list[tuple[Path, pd.DataFrame | None]]) -> dict:
    """reusable_clips over several earlier builds (the previous output, partitions' outputs): the first that has a
    clip's codes under its current content key gives them."""
    found: dict = {}
    for folder, index in reversed(earlier):
        found.update(reusable_clips(job, folder, index))
    return found


def reuse_shard(job: ShardJob, prev_out: Path, prev_meta: dict, prev_index: pd.DataFrame | None, staging: Path) -> list[dict] | None:
    """Link an unchanged shard from the previous build into `staging`; its index rows, or None."""
    if prev_index is None or prev_meta.get("shard_keys", {}).get(str(job.number)) != job.key:
        return None
    src = prev_out / SHARD_DIR / shard_name(job.number)
    if not src.is_file():
        return None
    dst = staging / SHARD_DIR / shard_name(job.number)
    dst.parent.mkdir(parents=True, exist_ok=True)
    link_or_copy(src, dst)
    rows = prev_index[prev_index["shard"] == job.number]
    return [{"clip_id": r.clip_id, "offset": int(r.offset), "n_frames": int(r.n_frames), "shard": job.number}
            for r in rows.itertuples()]


def codec_headline(eval_dir: Path | None) -> dict:
    """The codec's headline quality, recorded with the shards made by it (lineage)."""
    if eval_dir is None or not (eval_dir / "metrics.json").is_file():
        return {}
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    return {k: metrics.get(k) for k in ("visqol", "mel_distance", "si_sdr", "bitrate_kbps")}


def encode_partition(curated: Path, codec_dir: Path, staging: Path, files: frozenset[str], cfg: TokensConfig,
                     previous: Path | None = None, partition: str = "", log=None) -> dict:
    """One partition's share of the stage: the codes of the clips cut from `files`, as a one-shard build in
    `staging` (shards/, index.parquet, clip_keys.parquet, meta.json) that the whole stage takes by clip key."""
    from components.omnicodec import load_codec

    started = time.monotonic()
    codec = load_codec(codec_dir)
    codec_digest = tree_digest(codec_dir / "model.safetensors", codec_dir / "config.json")
    manifest = pd.read_parquet(curated / "manifest.parquet")
    manifest = manifest[manifest["source_file"].astype(str).isin(files)]
    n_quantizers = cfg.n_quantizers or codec.num_codebooks
    jobs = plan_jobs(manifest, curated, codec_digest, max(1, len(manifest)), n_quantizers)
    prev_index = previous_build(previous)[1] if previous is not None else None
    rows: list[dict] = []
    (staging / SHARD_DIR).mkdir(parents=True, exist_ok=True)
    _init_worker(str(codec_dir), cfg.device, threads=int(os.environ.get("OMP_NUM_THREADS", "0")) or (os.cpu_count() or 1))
    for job in jobs:
        job = dataclasses.replace(job, reusable=reusable_clips(job, previous, prev_index) if previous else {})
        rows.extend(_build_shard(job, str(staging / SHARD_DIR), cfg.batch_size, cfg.n_quantizers, cfg.device))
    encoded = sum(bool(r.pop("encoded", False)) for r in rows)
    pd.DataFrame(rows, columns=["clip_id", "offset", "n_frames", "shard"]).to_parquet(staging / "index.parquet", index=False)
    pd.DataFrame({"clip_id": [c for j in jobs for c in j.clip_ids], "clip_key": [k for j in jobs for k in j.clip_keys]}) \
        .to_parquet(staging / CLIP_KEYS, index=False)
    (staging / "meta.json").write_text(json.dumps({"partition": partition, "codec": {"digest": codec_digest}}, indent=1))
    if log:
        log.info("partition %s: %d clips, %d encoded, %d taken from the previous build", partition, len(rows), encoded,
                 len(rows) - encoded)
    return {"partition": partition, "n_clips": len(rows), "clips_encoded": encoded, "clips_reused": len(rows) - encoded,
            "build_seconds": time.monotonic() - started}


def build_token_shards(curated: Path, captions_dir: Path, codec_dir: Path, out: Path, staging: Path,
                       cfg: TokensConfig, progress=lambda it, **kw: it, log=None, codec_eval: Path | None = None,
                       parts: list[Path] = ()) -> dict:
    """Encode into `staging` (reusing unchanged shards of `out`, and unchanged clips' codes from `out` and from
    `parts`, the partitions' outputs); returns the build metrics."""
    from components.omnicodec import load_codec

    started = time.monotonic()
    codec = load_codec(codec_dir)
    codec_digest = tree_digest(codec_dir / "model.safetensors", codec_dir / "config.json")
    manifest, embeddings = load_corpus(curated, captions_dir)
    n_quantizers = cfg.n_quantizers or codec.num_codebooks
    jobs = plan_jobs(manifest, curated, codec_digest, cfg.clips_per_shard, n_quantizers)
    prev_meta, prev_index = previous_build(out) if cfg.reuse_unchanged_shards else ({}, None)
    earlier = [(out, prev_index)] + ([(part, previous_build(part)[1]) for part in parts] if cfg.reuse_unchanged_shards else [])

    rows: list[dict] = []
    to_encode = []
    for job in jobs:
        reused = reuse_shard(job, out, prev_meta, prev_index, staging)
        if reused is None:
            to_encode.append(dataclasses.replace(job, reusable=reusable_from(job, earlier)))
        else:
            rows.extend(reused)
    clips_to_encode = sum(len(j.clip_ids) - len(j.reusable) for j in to_encode)
    if log:
        log.info("%d shards planned, %d unchanged and reused, %d to write; %d of %d clips to encode (the rest's codes "
                 "come from the previous build)", len(jobs), len(jobs) - len(to_encode), len(to_encode),
                 clips_to_encode, len(manifest))
    (staging / SHARD_DIR).mkdir(parents=True, exist_ok=True)
    args = (str(staging / SHARD_DIR), cfg.batch_size, cfg.n_quantizers, cfg.device)
    if cfg.workers > 1 and len(to_encode) > 1:
        threads = max(1, (os.cpu_count() or 1) // cfg.workers)
        with futures.ProcessPoolExecutor(cfg.workers, initializer=_init_worker,
                                         initargs=(str(codec_dir), cfg.device, threads)) as pool:
            pending = [pool.submit(_build_shard, job, *args) for job in to_encode]
            for fut in progress(futures.as_completed(pending), total=len(pending), desc="encoding shards", unit="shard"):
                rows.extend(fut.result())
    else:
        _init_worker(str(codec_dir), cfg.device, threads=int(os.environ.get("OMP_NUM_THREADS", "0")) or (os.cpu_count() or 1))
        for job in progress(to_encode, total=len(to_encode), desc="encoding shards", unit="shard"):
            rows.extend(_build_shard(job, *args))

    by_id = {}
    for i, r in enumerate(manifest.itertuples()):
        by_id[r.clip_id] = ClipTokens(
            clip_id=r.clip_id, codes=np.zeros((0, 0)), text_embeddings=embeddings[i], captions=list(r.captions),
            seconds_start=float(r.start_s), seconds_total=float(r.source_duration_s),
            piece_id=str(r.piece_id), split=str(r.split), instrument=known_instrument(getattr(r, "instrument", None)),
        )
    clips_encoded = sum(bool(r.pop("encoded", False)) for r in rows)
    index = finalize_index(staging, rows, by_id, codec.frame_rate)
    pd.DataFrame({"clip_id": [c for j in jobs for c in j.clip_ids],
                  "clip_key": [k for j in jobs for k in j.clip_keys]}).to_parquet(staging / CLIP_KEYS, index=False)
    write_meta(
        staging, num_codebooks=n_quantizers, text_dim=int(embeddings.shape[-1]), codebook_size=codec.codebook_size,
        frame_rate=codec.frame_rate, sample_rate=codec.sample_rate, clips_per_shard=cfg.clips_per_shard,
        n_shards=len(jobs), n_clips=len(index),
        extra={"codec": {"path": str(codec_dir), "digest": codec_digest, "eval": codec_headline(codec_eval)},
               "shard_keys": {str(j.number): j.key for j in jobs}},
    )
    return {
        "n_clips": len(index), "n_shards": len(jobs), "shards_encoded": len(to_encode), "shards_reused": len(jobs) - len(to_encode),
        "clips_encoded": clips_encoded, "clips_reused": len(index) - clips_encoded,
        "total_frames": int(index["n_frames"].sum()), "hours": float(index["n_frames"].sum() / codec.frame_rate / 3600),
        "build_seconds": time.monotonic() - started,
        "splits": index["split"].value_counts().to_dict(),
    }
