"""What must hold for the curation stage's outputs (declared in components/curation/declaration.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from components.common.stage import CheckOutcome


def manifest_expectations(repo: Path, cfg) -> CheckOutcome:
    from components.curation.expectations import validate_manifest

    report = validate_manifest(pd.read_parquet(repo / "data" / "curated" / "manifest.parquet"), cfg)
    return CheckOutcome(report.success, f"suite {report.suite}", report.to_metadata())


def quarantine_expectations(repo: Path, cfg) -> CheckOutcome:
    from components.curation.expectations import validate_quarantine

    report = validate_quarantine(pd.read_parquet(repo / "data" / "curated" / "quarantine.parquet"))
    return CheckOutcome(report.success, f"suite {report.suite}", report.to_metadata())


def every_input_accounted_for(repo: Path, cfg) -> CheckOutcome:
    """Nothing is silently lost: every input file is curated or quarantined with a reason."""
    from components.curation.discover import discover

    curated = repo / "data" / "curated"
    inputs, _ = discover(repo / "data" / "corpus" / "audio")
    manifest = pd.read_parquet(curated / "manifest.parquet", columns=["source_file"])
    quarantine = pd.read_parquet(curated / "quarantine.parquet", columns=["source_file", "reason"])
    seen = set(manifest["source_file"]) | set(quarantine["source_file"])
    missing = [i.rel for i in inputs if i.rel not in seen]
    no_reason = int((quarantine["reason"].fillna("").str.strip() == "").sum())
    return CheckOutcome(not missing and no_reason == 0, "nothing is silently lost", {
        "input_files": len(inputs), "curated_files": manifest["source_file"].nunique(),
        "quarantined_files": quarantine["source_file"].nunique(), "unaccounted": len(missing),
        "quarantined_without_reason": no_reason, "examples": ", ".join(missing[:5]),
        **{f"quarantined.{r}": int(n) for r, n in quarantine["reason"].value_counts().items()},
    })
