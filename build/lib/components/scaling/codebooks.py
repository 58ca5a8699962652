"""The same token shards at a lower bitrate: only the first k of the K codebooks.

OmniCodec's quantizer is residual (each codebook codes what the previous ones left) and trained
with quantizer dropout, so the first k codebooks of a frame are exactly the codes the codec
emits when asked for k quantizers: k/K of the bitrate, same frames, same captions, same splits.

    shard [n_frames, K=4]  ->  shard [n_frames, k=2]     (frame-major, as components/tokens writes)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from components.common.atomic import atomic_dir, atomic_write_json
from components.tokens.shards import SHARD_DIR, read_meta


def truncated_tokens(tokens: Path, k: int, root: Path) -> Path:
    """A token folder with the first `k` codebooks of `tokens` (built once, reused while `tokens` is unchanged)."""
    meta = read_meta(tokens)
    K = int(meta["num_codebooks"])
    if not 1 <= k <= K:
        raise ValueError(f"{tokens}: cannot keep {k} of its {K} codebooks")
    if k == K:
        return tokens
    digest = json.dumps(meta, sort_keys=True).encode() + (tokens / "index.parquet").read_bytes()
    import hashlib

    out = root / f"tokens-k{k}-{hashlib.sha1(digest).hexdigest()[:12]}"
    if (out / "meta.json").is_file():
        return out
    with atomic_dir(out) as staging:
        (staging / SHARD_DIR).mkdir()
        for shard in sorted((tokens / SHARD_DIR).glob("*.npy")):
            codes = np.load(shard, mmap_mode="r")
            np.save(staging / SHARD_DIR / shard.name, np.ascontiguousarray(codes[:, :k]))
        for name in ("index.parquet", "text_embeddings.npy"):
            shutil.copyfile(tokens / name, staging / name)
        codec = dict(meta.get("codec") or {})
        if "eval" in codec and isinstance(codec["eval"], dict) and "bitrate_kbps" in codec["eval"]:
            # the codec's measured quality was at K codebooks: keep only the bitrate, scaled
            codec["eval"] = {"bitrate_kbps": codec["eval"]["bitrate_kbps"] * k / K}
        atomic_write_json(staging / "meta.json", {**meta, "num_codebooks": k, "codec": codec,
                                                  "derived_from": {"tokens": str(tokens), "codebooks": f"first {k} of {K}"}})
    return out


def bitrate_kbps(meta: dict) -> float:
    """Bits per second of a token folder's codes: frames/s x codebooks x log2(codebook size)."""
    return float(meta["frame_rate"]) * int(meta["num_codebooks"]) * np.log2(int(meta["codebook_size"])) / 1000.0
