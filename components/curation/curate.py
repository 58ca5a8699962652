"""The curation stage: a folder of arbitrary audio -> clips/, manifest.parquet, quarantine.parquet.

    discover ──► inputs (sorted) ──workers──► FileOutcome per file (clips written, or reasons)
             ──► near-duplicates across all clips, first kept in input order
             ──► accounting: every input has a manifest row or a quarantine row, else fail
             ──► manifest.parquet, quarantine.parquet

The result depends only on the inputs and the config, never on the number of workers: outcomes
are put back in input order before duplicates are resolved.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from components.common.splits import SPLITS
from components.curation.config import CurationConfig
from components.curation.discover import InputFile, discover
from components.curation.fingerprint import DuplicateIndex, from_hex
from components.curation.process import SIDECAR_COLUMNS, FileOutcome, ensure_held_out, process_file, quarantine_row
from components.curation import incremental
from components.curation.runner import run_isolated
from components.common.errors import LyraError

MANIFEST_COLUMNS = (
    "clip_id", "path", "source_file", "piece_id", "split", "segment_index", "start_s", "duration_s",
    "source_duration_s", "sample_rate", "loudness_lufs", "source_loudness_lufs", "gain_db", "peak_dbfs",
    "clipped_fraction", "fingerprint", "meta", *SIDECAR_COLUMNS,
)
QUARANTINE_COLUMNS = ("source_file", "clip_id", "reason", "detail")
_MANIFEST_DTYPES = {
    "segment_index": "int64", "sample_rate": "int64", "start_s": "float64", "duration_s": "float64",
    "source_duration_s": "float64", "loudness_lufs": "float64", "source_loudness_lufs": "float64",
    "gain_db": "float64", "peak_dbfs": "float64", "clipped_fraction": "float64", "program": "Int64",
    "tempo_bpm": "float64",
}


class CurationInputError(LyraError, ValueError):
    """The input folder cannot be curated as given (missing, empty, overlapping the output)."""


@dataclasses.dataclass
class CurationResult:
    manifest: pd.DataFrame
    quarantine: pd.DataFrame
    n_inputs: int
    n_sidecars: int
    source_seconds: float   # audio decoded in this run (files taken from the previous output excluded)
    wall_seconds: float
    files_reused: int = 0   # unchanged files taken from the previous output or a partition's
    files_from_partitions: int = 0   # ... of which from a partition's output (data/parts/curated_clips)
    removed: list[str] = dataclasses.field(default_factory=list)   # source files gone since the previous output
    duplicates_across_splits: int = 0   # near-duplicate copies dropped whose kept clip is in another split
    moved_to_held_out: list[str] = dataclasses.field(default_factory=list)   # "group -> split" (ensure_held_out)


class _ProcessTask:
    """Picklable per-file job for the worker processes."""

    def __init__(self, clips_dir: Path, config: CurationConfig):
        self.clips_dir, self.config = clips_dir, config

    def __call__(self, item: InputFile) -> FileOutcome:
        return process_file(item, self.clips_dir, self.config)


def check_folders(input_dir: Path, out_dir: Path) -> None:
    from components.curation.table import is_table

    input_dir, out_dir = input_dir.resolve(), out_dir.resolve()
    listed = is_table(input_dir)            # a table reads only the files it lists, beside it
    if listed:
        input_dir = input_dir.parent
    if not input_dir.is_dir():
        raise CurationInputError(f"input folder not found: {input_dir}")
    if not listed and (out_dir == input_dir or input_dir in out_dir.parents):
        raise CurationInputError(f"output {out_dir} lies inside the input folder: its clips would be re-ingested")
    if out_dir in input_dir.parents:
        raise CurationInputError(f"input {input_dir} lies inside the output folder, which is replaced as a whole")


def curate_folder(input_dir: Path, out_dir: Path, config: CurationConfig,
                  progress: Callable = lambda it, **kw: it, log=None, previous: Path | None = None,
                  parts: list[Path] = (), only: frozenset[str] | None = None) -> CurationResult:
    """Curate `input_dir` into `out_dir` (a fresh staging folder): clips/, manifest.parquet, quarantine.parquet,
    sources.parquet. With `previous` (the output folder a previous run left) and `parts` (partition outputs),
    unchanged files are taken from them (incremental.py): the result is the same, only new and changed files are
    decoded. With `only` (one partition's files, components/partitions.py) just those files are curated
    and the catalogue-wide steps (near-duplicates, held-out groups) are left to the whole stage."""
    start = time.perf_counter()
    inputs, sidecars = discover(input_dir)
    if only is not None:
        inputs = [item for item in inputs if item.rel in only]
    if not inputs:
        raise CurationInputError(f"no input files in {input_dir} ({len(sidecars)} sidecars, nothing else)"
                                 + (" in this partition" if only is not None else ""))
    clips_dir = out_dir / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    earlier = incremental.Previous.load(previous)
    pools = [earlier, *(incremental.Previous.load(folder) for folder in parts)]
    # a partition's run hashes its own files (the stamps beside the whole output are the whole stage's)
    stamps = incremental.stamps_file(previous) if previous is not None and only is None else None
    file_keys = incremental.keys(inputs, config, stamps)

    def crashed(item: InputFile, detail: str) -> FileOutcome:
        return FileOutcome(item.rel, [], [quarantine_row(item.rel, "crashed", detail)])

    outcomes: list[FileOutcome | None] = []
    from_parts = 0
    for item in inputs:
        outcome = earlier.reuse(item, file_keys[item.rel], clips_dir)
        for pool in pools[1:] if outcome is None else ():
            outcome = pool.reuse(item, file_keys[item.rel], clips_dir)
            if outcome is not None:
                from_parts += 1
                break
        outcomes.append(outcome)
    to_curate = [i for i, outcome in enumerate(outcomes) if outcome is None]      # new or changed files
    results = run_isolated(_ProcessTask(clips_dir, config), [inputs[i] for i in to_curate], config.workers,
                           on_crash=crashed)
    for j, outcome in progress(results, desc="curating", total=len(to_curate), unit="file"):
        outcomes[to_curate[j]] = outcome
        if log is not None:
            for row in outcome.quarantined:
                log.info("quarantined %s%s: %s (%s)", row["source_file"],
                         f" [{row['clip_id']}]" if row["clip_id"] else "", row["reason"], row["detail"])
    removed = earlier.removed(inputs) if only is None else []      # a partition sees only its own files
    if log is not None and (earlier.folder is not None or from_parts):
        log.info("%d unchanged files taken from the previous output (%d of them from partitions' outputs), %d new or "
                 "changed curated, %d removed from the input (their clips are gone)%s", len(inputs) - len(to_curate),
                 from_parts, len(to_curate), len(removed),
                 f": {', '.join(removed[:10])}{' ...' if len(removed) > 10 else ''}" if removed else "")

    if only is None:
        moved = ensure_held_out([row for outcome in outcomes for row in outcome.clips], config)
        if log is not None and moved:
            log.info("valid / test had no group: moved %s (the smallest training groups)", "; ".join(moved))
        manifest_rows, quarantine_rows, across_splits = resolve_duplicates(outcomes, config.fingerprint_max_hamming,
                                                                           clips_dir, log)
    else:               # one partition: every clip kept, for the whole stage to de-duplicate across the catalogue
        moved, across_splits = [], 0
        manifest_rows = [row for outcome in outcomes for row in outcome.clips]
        quarantine_rows = [row for outcome in outcomes for row in outcome.quarantined]
    manifest = manifest_frame(manifest_rows)
    quarantine = quarantine_frame(quarantine_rows)
    check_accounting(inputs, manifest, quarantine)
    manifest.to_parquet(out_dir / "manifest.parquet", index=False)
    quarantine.to_parquet(out_dir / "quarantine.parquet", index=False)
    incremental.write_sources(out_dir, outcomes, file_keys)
    return CurationResult(manifest, quarantine, len(inputs), len(sidecars),
                          source_seconds=float(sum(outcomes[i].source_seconds for i in to_curate)),
                          wall_seconds=time.perf_counter() - start, files_reused=len(inputs) - len(to_curate),
                          removed=removed, duplicates_across_splits=across_splits,
                          moved_to_held_out=moved, files_from_partitions=from_parts)


def resolve_duplicates(outcomes: list[FileOutcome], max_fraction: float, clips_dir: Path,
                       log=None) -> tuple[list[dict], list[dict], int]:
    """Keep the first of every group of near-duplicate clips (input order); quarantine the rest.
    Returns (manifest rows, quarantine rows, how many dropped copies were in another split than their kept clip)."""
    index = DuplicateIndex(max_fraction)
    sources: dict[str, str] = {}
    splits: dict[str, str] = {}
    manifest, quarantine, across_splits = [], [], 0
    for outcome in outcomes:
        quarantine.extend(outcome.quarantined)
        for row in outcome.clips:
            fp = from_hex(row["fingerprint"])
            match = index.match(fp)
            if match is None:
                index.add(row["clip_id"], fp)
                sources[row["clip_id"]] = row["source_file"]
                splits[row["clip_id"]] = row["split"]
                manifest.append(row)
                continue
            kept, distance = match
            # the copy is dropped, never kept in another split: a pair across splits would leak test into train
            across = f"; it was in {row['split']}, the kept clip in {splits[kept]}" if row["split"] != splits[kept] else ""
            across_splits += bool(across)
            detail = (f"near-duplicate of clip {kept} (from {sources[kept]}): {100 * distance:.1f}% of fingerprint "
                      f"bits differ (threshold {100 * max_fraction:.0f}%){across}")
            quarantine.append(quarantine_row(row["source_file"], "duplicate", detail, row["clip_id"]))
            (clips_dir / f"{row['clip_id']}.wav").unlink(missing_ok=True)
            if log is not None:
                log.info("quarantined %s [%s]: duplicate (%s)", row["source_file"], row["clip_id"], detail)
    return manifest, quarantine, across_splits


def manifest_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    return frame.astype(_MANIFEST_DTYPES)


def quarantine_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(QUARANTINE_COLUMNS)).astype(str)


def check_accounting(inputs: list[InputFile], manifest: pd.DataFrame, quarantine: pd.DataFrame) -> None:
    """THE invariant: every input file is in the manifest or the quarantine. A violation is a bug: fail loudly."""
    seen = set(manifest["source_file"]) | set(quarantine["source_file"])
    missing = [i.rel for i in inputs if i.rel not in seen]
    if missing:
        raise RuntimeError(f"{len(missing)} input files are neither curated nor quarantined, e.g. {missing[:5]}")


def curation_metrics(result: CurationResult, config: CurationConfig) -> dict:
    manifest, quarantine = result.manifest, result.quarantine
    curated = set(manifest["source_file"])
    whole_file = quarantine[quarantine["clip_id"] == ""]
    clip_seconds = float(manifest["duration_s"].sum())
    x_realtime = result.source_seconds / max(result.wall_seconds, 1e-9)
    return {
        "files_in": result.n_inputs,
        "files_reused": result.files_reused,
        "files_from_partitions": result.files_from_partitions,
        "files_processed": result.n_inputs - result.files_reused,
        "files_removed": len(result.removed),
        "sidecars": result.n_sidecars,
        "files_curated": len(curated),
        "files_quarantined": int(whole_file["source_file"].nunique()),
        "files_without_clips": result.n_inputs - len(curated),
        "quarantine_rows": len(quarantine),
        "quarantined_by_reason": dict(sorted(collections.Counter(quarantine["reason"]).items())),
        # near-duplicate pairs whose two clips had landed in different splits (the copy is dropped, reported here)
        "duplicates_across_splits": result.duplicates_across_splits,
        # groups moved from train so that valid and test are not empty (a small library's hash split)
        "groups_moved_to_held_out": result.moved_to_held_out,
        "clips": len(manifest),
        "clips_by_split": {s: int((manifest["split"] == s).sum()) for s in SPLITS},
        "pieces": int(manifest["piece_id"].nunique()),
        "clip_seconds": round(clip_seconds, 2),
        "hours": round(clip_seconds / 3600, 4),
        "source_seconds": round(result.source_seconds, 2),
        "wall_seconds": round(result.wall_seconds, 2),
        "x_realtime": round(x_realtime, 1),
        "workers": config.workers,
        "x_realtime_per_worker": round(x_realtime / config.workers, 1),
        "loudness_lufs_mean": round(float(manifest["loudness_lufs"].mean()), 2) if len(manifest) else None,
        "clipped_clips": int((manifest["clipped_fraction"] > 0).sum()),
    }


def plot_summary(result: CurationResult, config: CurationConfig, path: Path) -> Path:
    """Left: quarantine rows by reason. Right: clip loudness before and after normalisation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    reasons = collections.Counter(result.quarantine["reason"])
    if reasons:
        names = sorted(reasons)
        left.barh(names, [reasons[n] for n in names], color="tab:red")
    else:
        left.text(0.5, 0.5, "nothing quarantined", ha="center", va="center", transform=left.transAxes)
    left.set_title(f"quarantine ({len(result.quarantine)} rows, {result.n_inputs} files in)")
    m = result.manifest
    if len(m):
        before = (m["loudness_lufs"] - m["gain_db"]).to_numpy()
        bins = np.linspace(min(before.min(), config.loudness_target_lufs - 15) - 1, max(before.max(), -5) + 1, 40)
        right.hist(before, bins=bins, alpha=0.6, label="source clip")
        right.hist(m["loudness_lufs"], bins=bins, alpha=0.8, label="curated clip")
        right.axvline(config.loudness_target_lufs, color="k", ls="--", lw=1)
        right.legend()
    right.set_xlabel("loudness (LUFS)")
    right.set_title(f"{len(m)} clips, {m['duration_s'].sum() / 60 if len(m) else 0:.1f} min")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
