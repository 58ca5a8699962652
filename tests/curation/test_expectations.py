"""The Great Expectations suites pass on good tables and fail, naming the problem, on corrupted ones."""

from __future__ import annotations

import json

import numpy as np
import pytest

from components.curation.config import CurationConfig
from components.curation.curate import manifest_frame, quarantine_frame
from components.curation.expectations import validate_manifest, validate_quarantine

CONFIG = CurationConfig()


def good_manifest():
    rows = []
    for i, (duration, split) in enumerate([(10.0, "train"), (10.0, "valid"), (4.5, "test")]):
        clip_id = f"song-0123abcd-{i:03d}"
        rows.append({
            "clip_id": clip_id, "path": f"clips/{clip_id}.wav", "source_file": "album/song.flac", "piece_id": "song",
            "split": split, "segment_index": i, "start_s": 10.0 * i, "duration_s": duration,
            "source_duration_s": 24.5, "sample_rate": 24_000, "loudness_lufs": -23.0 - 0.5 * i,
            "source_loudness_lufs": -18.2, "gain_db": -4.8, "peak_dbfs": -6.1, "clipped_fraction": 0.001 * i,
            "fingerprint": "ab" * 128, "meta": json.dumps({"title": "Song"}), "title": "Song",
        })
    return manifest_frame(rows)


def failed(report) -> set[tuple[str, str | None]]:
    return {(f["expectation"], f["column"]) for f in report.failures}


@pytest.fixture(scope="module")
def good_report():
    return validate_manifest(good_manifest(), CONFIG)


def test_manifest_suite_passes_on_a_good_manifest(good_report):
    assert good_report.success, good_report.failures
    assert good_report.failures == []
    assert good_report.statistics["evaluated_expectations"] >= 10
    meta = good_report.to_metadata()
    assert meta["success"] is True and all(isinstance(v, (int, float, str, bool)) for v in meta.values())


def test_manifest_suite_fails_on_a_corrupted_manifest():
    bad = good_manifest()
    bad.loc[1, "clip_id"] = bad.loc[0, "clip_id"]          # duplicated id
    bad.loc[2, "sample_rate"] = 16_000                     # wrong rate
    bad.loc[0, "loudness_lufs"] = np.nan                   # NaN loudness
    bad.loc[1, "split"] = "holdout"                        # unknown split
    bad.loc[2, "duration_s"] = 31.0                        # longer than a clip
    report = validate_manifest(bad, CONFIG)
    assert not report.success
    problems = failed(report)
    assert ("expect_column_values_to_be_unique", "clip_id") in problems
    assert ("expect_column_values_to_be_in_set", "sample_rate") in problems
    assert ("expect_column_values_to_not_be_null", "loudness_lufs") in problems
    assert ("expect_column_values_to_be_in_set", "split") in problems
    assert ("expect_column_values_to_be_between", "duration_s") in problems
    by_column = {f["column"]: f for f in report.failures if f["expectation"].endswith("in_set")}
    assert by_column["sample_rate"]["unexpected_values"] == [16_000]
    meta = report.to_metadata()
    assert meta["success"] is False and meta["failed.column_values_to_be_unique.clip_id"] == 2


def test_manifest_suite_fails_on_out_of_range_loudness_and_clipping():
    bad = good_manifest()
    bad.loc[0, "loudness_lufs"] = -40.0                    # far below target - floor
    bad.loc[1, "clipped_fraction"] = 0.2
    problems = failed(validate_manifest(bad, CONFIG))
    assert ("expect_column_values_to_be_between", "loudness_lufs") in problems
    assert ("expect_column_values_to_be_between", "clipped_fraction") in problems


def test_manifest_suite_fails_on_a_missing_column_and_on_an_empty_table():
    report = validate_manifest(good_manifest().drop(columns=["fingerprint"]), CONFIG)
    assert not report.success and any(f["column"] == "fingerprint" for f in report.failures)
    assert not validate_manifest(good_manifest().iloc[:0], CONFIG).success


def test_quarantine_suite():
    good = quarantine_frame([
        {"source_file": "a.wav", "clip_id": "", "reason": "corrupt", "detail": "header unreadable"},
        {"source_file": "b.wav", "clip_id": "b-1-000", "reason": "duplicate", "detail": "of a-1-000"},
    ])
    assert validate_quarantine(good).success
    assert validate_quarantine(quarantine_frame([])).success  # nothing quarantined is fine
    bad = good.copy()
    bad.loc[0, "reason"] = "gremlins"
    bad.loc[1, "source_file"] = ""
    report = validate_quarantine(bad)
    assert not report.success
    assert ("expect_column_values_to_be_in_set", "reason") in failed(report)
    assert ("expect_column_value_lengths_to_be_between", "source_file") in failed(report)
