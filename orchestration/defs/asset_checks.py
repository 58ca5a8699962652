"""Asset checks: each re-validates what a stage wrote. Blocking checks stop downstream assets."""

import numpy as np
import pandas as pd

import dagster as dg

from orchestration.launchers import REPO_ROOT

DATA = REPO_ROOT / "data"


def _result(passed: bool, description: str, metadata: dict) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=passed, description=description, metadata=metadata)


def _stage_config(stage_name: str):
    """The stage's typed config for the profile the launcher runs (what the stage itself used)."""
    import os

    from components.config import load_stage_config
    from components.pipeline import stage_by_name

    stage = stage_by_name(stage_name)
    return load_stage_config(stage.params, stage.config_class(), params_path=REPO_ROOT / "params.yaml",
                             profile=os.environ.get("LYRA_PROFILE"))


# --- curation -------------------------------------------------------------------------------

@dg.asset_check(asset="curated_clips", blocking=True,
                description="Great Expectations suite on manifest.parquet (durations, rate, loudness, ids, splits)")
def manifest_expectations() -> dg.AssetCheckResult:
    from components.curation.expectations import validate_manifest

    report = validate_manifest(pd.read_parquet(DATA / "curated" / "manifest.parquet"), _stage_config("curated_clips"))
    return _result(report.success, f"suite {report.suite}", report.to_metadata())


@dg.asset_check(asset="curated_clips", description="Great Expectations suite on quarantine.parquet (known reasons, named files)")
def quarantine_expectations() -> dg.AssetCheckResult:
    from components.curation.expectations import validate_quarantine

    report = validate_quarantine(pd.read_parquet(DATA / "curated" / "quarantine.parquet"))
    return dg.AssetCheckResult(passed=report.success, severity=dg.AssetCheckSeverity.WARN,
                               description=f"suite {report.suite}", metadata=report.to_metadata())


@dg.asset_check(asset="curated_clips", blocking=True, description="every input file is curated or quarantined with a reason")
def every_input_accounted_for() -> dg.AssetCheckResult:
    from components.curation.discover import discover

    inputs, _ = discover(DATA / "corpus" / "audio")
    manifest = pd.read_parquet(DATA / "curated" / "manifest.parquet", columns=["source_file"])
    quarantine = pd.read_parquet(DATA / "curated" / "quarantine.parquet", columns=["source_file", "reason"])
    seen = set(manifest["source_file"]) | set(quarantine["source_file"])
    missing = [i.rel for i in inputs if i.rel not in seen]
    no_reason = int((quarantine["reason"].fillna("").str.strip() == "").sum())
    return _result(not missing and no_reason == 0, "nothing is silently lost", {
        "input_files": len(inputs), "curated_files": manifest["source_file"].nunique(),
        "quarantined_files": quarantine["source_file"].nunique(), "unaccounted": len(missing),
        "quarantined_without_reason": no_reason, "examples": ", ".join(missing[:5]),
        **{f"quarantined.{r}": int(n) for r, n in quarantine["reason"].value_counts().items()},
    })


# --- captions -------------------------------------------------------------------------------

@dg.asset_check(asset="captions", blocking=True, description="one caption row and one finite embedding per curated clip")
def every_clip_captioned() -> dg.AssetCheckResult:
    manifest = pd.read_parquet(DATA / "curated" / "manifest.parquet", columns=["clip_id"])
    captions = pd.read_parquet(DATA / "captions" / "captions.parquet", columns=["clip_id", "caption"])
    emb = np.load(DATA / "captions" / "embeddings.npy", mmap_mode="r")
    missing = set(manifest["clip_id"]) - set(captions["clip_id"])
    empty = int((captions["caption"].fillna("").str.strip() == "").sum())
    aligned = emb.ndim == 3 and emb.shape[0] == len(captions)
    finite = bool(np.isfinite(emb).all())
    passed = not missing and empty == 0 and aligned and finite and captions["clip_id"].is_unique
    return _result(passed, "captions cover every curated clip", {
        "clips": len(manifest), "captioned": len(captions), "missing": len(missing), "empty_captions": empty,
        "embedding_shape": str(tuple(emb.shape)), "embeddings_finite": finite,
    })


# --- token shards ---------------------------------------------------------------------------

@dg.asset_check(asset="token_shards", blocking=True, description="every curated clip is in exactly one shard")
def every_clip_in_exactly_one_shard() -> dg.AssetCheckResult:
    from components.tokens.checks import every_clip_in_exactly_one_shard as check

    manifest = pd.read_parquet(DATA / "curated" / "manifest.parquet", columns=["clip_id"])
    index = pd.read_parquet(DATA / "tokens" / "index.parquet", columns=["clip_id"])
    outcome = check(manifest["clip_id"], index)
    return _result(outcome.passed, outcome.description, outcome.metadata())


@dg.asset_check(asset="token_shards", blocking=True, description="all codes lie inside the codebook")
def codes_in_range() -> dg.AssetCheckResult:
    from components.tokens.checks import codes_in_range as check
    from components.tokens.dataset import TokenDataset

    outcome = check(TokenDataset(DATA / "tokens", split=None))
    return _result(outcome.passed, outcome.description, outcome.metadata())
