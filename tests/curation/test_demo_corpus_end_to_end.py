"""The demo corpus through curation: every track accounted for, metadata and splits carried, GE passes."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from components.cli import main as lyra


@pytest.mark.slow
def test_demo_corpus_curates_cleanly(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("profile: tiny\n")
    common = ["--params", str(params)]
    assert lyra(["corpus", "demo", "--out", str(tmp_path / "corpus"), *common,
                 "--set", "n_pieces=5", "--set", "max_track_s=16"]) == 0
    assert lyra(["curate", "--input", str(tmp_path / "corpus" / "audio"), "--out", str(tmp_path / "curated"),
                 "--metrics", str(tmp_path / "curate.json"), *common]) == 0

    tracks = pd.read_parquet(tmp_path / "corpus" / "tracks.parquet")
    manifest = pd.read_parquet(tmp_path / "curated" / "manifest.parquet")
    quarantine = pd.read_parquet(tmp_path / "curated" / "quarantine.parquet")
    metrics = json.loads((tmp_path / "curate.json").read_text())

    wavs = {f"{t}.wav" for t in tracks["track_id"]}
    assert set(manifest["source_file"]) | set(quarantine["source_file"]) == wavs  # every track accounted for
    assert quarantine.empty, quarantine.to_dict("records")                       # and none lost on the way
    assert metrics["files_in"] == len(tracks) and metrics["sidecars"] == len(tracks)
    assert metrics["ge_manifest_success"] and metrics["ge_quarantine_success"]

    # piece, split and labels come from the sidecars, so splits stay by piece after curation
    joined = manifest.merge(tracks, left_on=manifest["source_file"].str.removesuffix(".wav"), right_on="track_id",
                            suffixes=("", "_track"))
    assert len(joined) == len(manifest)
    for column in ("piece_id", "split", "title", "instrument", "key", "mode", "meter", "program"):
        assert (joined[column] == joined[f"{column}_track"]).all(), column
    assert (manifest.groupby("piece_id")["split"].nunique() == 1).all()
    # clip durations add up to the (trimmed) tracks
    per_track = manifest.groupby("source_file")["duration_s"].sum()
    source = manifest.groupby("source_file")["source_duration_s"].first()
    assert ((per_track <= source + 1e-6) & (per_track >= source - 2.5)).all()
