"""corpus.source: a team's library (folder, glob, metadata table) becomes the corpus the lifecycle reads, with a
listing DVC versions; the source is a DVC dependency of the corpus stage; `lyra demo --corpus` records it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from components.cli import main as lyra
from components.corpus.sources import CorpusSourceError, parse
from tests.curation.library import make_library

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    return make_library(tmp_path_factory.mktemp("team") / "library", seconds=2.5)


def build(source: str, out: Path) -> int:
    return lyra(["corpus", "build", "--out", str(out), "--set", f"source={source}"])


def test_the_kinds_of_source(tmp_path):
    assert parse("demo").kind == "demo" and parse("demo").dvc_dependency is None
    folder = parse(str(tmp_path))
    assert (folder.kind, folder.dvc_dependency, folder.always_changed) == ("folder", str(tmp_path.resolve()), False)
    pattern = parse(f"{tmp_path}/lib/**/*.flac")
    assert (pattern.kind, pattern.root) == ("glob", (tmp_path / "lib").resolve())
    assert parse(f"{tmp_path}/catalogue.parquet").root == tmp_path.resolve()
    s3 = parse("s3://bucket/team/")
    assert (s3.kind, s3.spec, s3.dvc_dependency, s3.always_changed) == ("s3", "s3://bucket/team", None, True)
    for bad in ("s3://", "ftp://host/music"):
        with pytest.raises(CorpusSourceError):
            parse(bad)


def test_a_library_folder_is_brought_in_hard_linked_with_a_listing(library, tmp_path, capsys):
    out = tmp_path / "data" / "corpus"
    assert build(str(library), out) == 0, capsys.readouterr().err
    listing = json.loads((out / "listing.json").read_text())
    files = sorted(p.relative_to(library).as_posix() for p in library.rglob("*") if p.is_file())
    assert listing["kind"] == "folder" and sorted(listing["files"]) == files
    some = "Ann Ode/Night Lines/02 Track 2.flac"
    assert listing["files"][some]["size"] == (library / some).stat().st_size
    assert (out / "audio" / some).stat().st_ino == (library / some).stat().st_ino      # linked, not copied
    assert json.loads((out / "lineage.json").read_text())["source"] == str(library)


def test_a_glob_brings_in_only_what_it_matches_and_their_sidecars(library, tmp_path):
    out = tmp_path / "corpus"
    assert build(f"{library}/Ann Ode/**/*.flac", out) == 0
    files = sorted(json.loads((out / "listing.json").read_text())["files"])
    assert files == ["Night Lines/01 Track 1.flac", "Night Lines/01 Track 1.json",
                     "Night Lines/02 Track 2.flac", "Night Lines/03 Track 3.flac"]


def test_a_table_source_carries_its_rows_into_curation_as_the_folders_catalogue(library, tmp_path):
    table = tmp_path / "picks.csv"
    for rel in ("Bo Reel/Harbour/01 Track 1.mp3", "Ann Ode/Day Lines/02 Track 2.ogg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        os.link(library / rel, tmp_path / rel)
    pd.DataFrame([{"path": "Bo Reel/Harbour/01 Track 1.mp3", "instrument": "fiddle", "split": "test"},
                  {"path": "Ann Ode/Day Lines/02 Track 2.ogg", "instrument": "", "split": ""}]).to_csv(table, index=False)
    out = tmp_path / "data" / "corpus"
    assert build(str(table), out) == 0
    assert (out / "audio" / "catalogue.parquet").is_file()
    curated = tmp_path / "data" / "curated"
    assert lyra(["curate", "--input", str(out / "audio"), "--out", str(curated), "--set", "clip_s=2.0",
                 "--set", "min_clip_s=1.0"]) == 0
    manifest = pd.read_parquet(curated / "manifest.parquet")
    assert sorted(manifest["source_file"].unique()) == ["Ann Ode/Day Lines/02 Track 2.ogg", "Bo Reel/Harbour/01 Track 1.mp3"]
    row = manifest[manifest["source_file"] == "Bo Reel/Harbour/01 Track 1.mp3"].iloc[0]
    meta = json.loads(row["meta"])
    assert (meta["instrument"], meta["provenance"]["instrument"], row["split"]) == ("fiddle", "table", "test")
    assert meta["provenance"]["artist"] == "tags (ID3)"                 # the tags still count below the table
    assert pd.read_parquet(curated / "quarantine.parquet").empty        # the catalogue is metadata, not an input


def test_a_missing_source_is_one_clear_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "corpus"
    for source, expected in ((tmp_path / "nowhere", "no such folder"), (f"{tmp_path}/*.wav", "matches no file")):
        assert build(str(source), out) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and expected in err and str(tmp_path) in err, err
        assert not out.exists()


def test_a_local_source_is_a_dvc_dependency_and_an_s3_one_is_always_relisted(library):
    from components.config import load_params
    from components.pipeline import dvc_pipeline

    params = load_params()
    profile = params["profile"]
    default = dvc_pipeline(params)["stages"]["corpus"]
    assert not any(str(library) in d for d in default["deps"]) and "always_changed" not in default
    params[profile]["corpus"]["source"] = str(library)
    local = dvc_pipeline(params)["stages"]["corpus"]
    assert str(library.resolve()) in local["deps"] and "always_changed" not in local
    params[profile]["corpus"]["source"] = "s3://team-bucket/music"
    assert dvc_pipeline(params)["stages"]["corpus"]["always_changed"] is True


def test_lyra_demo_corpus_records_the_source_in_params_keeping_comments(library, tmp_path, monkeypatch):
    from orchestration.demo import use_corpus

    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    dvc_yaml = tmp_path / "dvc.yaml"
    monkeypatch.delenv("LYRA_PROFILE", raising=False)
    said = use_corpus(str(library), params)
    assert f"corpus.source = {library}" in said and "dvc.yaml regenerated" in said
    doc = yaml.safe_load(params.read_text())
    assert doc[doc["profile"]]["corpus"]["source"] == str(library)
    assert "# Stage parameters, by profile" in params.read_text()           # the file's comments are kept
    assert str(library.resolve()) in yaml.safe_load(dvc_yaml.read_text())["stages"]["corpus"]["deps"]
    assert "already" in use_corpus(str(library), params)
    with pytest.raises(CorpusSourceError):
        use_corpus("ftp://elsewhere/music", params)
