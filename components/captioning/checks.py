"""What must hold for the captions stage's outputs (declared in components/captioning/declaration.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from components.common.stage import CheckOutcome


def every_clip_captioned(repo: Path, cfg) -> CheckOutcome:
    """One caption row and one finite embedding per curated clip."""
    manifest = pd.read_parquet(repo / "data" / "curated" / "manifest.parquet", columns=["clip_id"])
    captions = pd.read_parquet(repo / "data" / "captions" / "captions.parquet", columns=["clip_id", "caption"])
    emb = np.load(repo / "data" / "captions" / "embeddings.npy", mmap_mode="r")
    missing = set(manifest["clip_id"]) - set(captions["clip_id"])
    empty = int((captions["caption"].fillna("").str.strip() == "").sum())
    aligned = emb.ndim == 3 and emb.shape[0] == len(captions)
    finite = bool(np.isfinite(emb).all())
    passed = not missing and empty == 0 and aligned and finite and captions["clip_id"].is_unique
    return CheckOutcome(passed, "captions cover every curated clip", {
        "clips": len(manifest), "captioned": len(captions), "missing": len(missing), "empty_captions": empty,
        "embedding_shape": str(tuple(emb.shape)), "embeddings_finite": finite,
    })
