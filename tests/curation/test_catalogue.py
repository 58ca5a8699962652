"""A team's library, as a new user brings it: Artist/Album/NN Title.ext in four formats with embedded tags (ID3,
Vorbis comments, FLAC), one sidecar. Tags reach the manifest with their source, an album never straddles splits,
and captions say what the tags say (genre, artist's style, mood) and nothing they do not."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from components.curation.config import CurationConfig
from components.curation.curate import curate_folder
from tests.curation.conftest import synth_music
from tests.curation.library import make_library

@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    return make_library(tmp_path_factory.mktemp("catalogue") / "library")


@pytest.fixture(scope="module")
def curated(library, tmp_path_factory):
    out = tmp_path_factory.mktemp("curated")
    config = CurationConfig(clip_s=2.0, min_clip_s=1.0, split_fractions={"train": 0.5, "valid": 0.25, "test": 0.25})
    return curate_folder(library, out, config).manifest


def test_embedded_tags_reach_the_manifest_with_their_source(curated):
    assert curated["source_file"].nunique() == 12
    rows = {r["source_file"]: (r, json.loads(r["meta"])) for r in curated.to_dict("records")}
    row, meta = rows["Ann Ode/Night Lines/02 Track 2.flac"]
    assert (meta["artist"], meta["album"], meta["genre"], meta["mood"], meta["tempo_bpm"]) == \
        ("Ann Ode", "Night Lines", "Jazz", "mellow", 96.0)
    assert row["title"] == "Track 2" and row["collection"] == "Night Lines" and row["tempo_bpm"] == 96.0
    assert meta["provenance"]["genre"] == "tags (FLAC Vorbis comment)"
    _, meta = rows["Ann Ode/Night Lines/01 Track 1.flac"]
    assert meta["genre"] == "Bebop" and meta["provenance"]["genre"] == "sidecar"
    assert meta["provenance"]["artist"] == "tags (FLAC Vorbis comment)"
    for source, expected in (("Ann Ode/Day Lines/01 Track 1.ogg", "Vorbis comment"),
                             ("Bo Reel/Harbour/01 Track 1.mp3", "ID3"), ("Bo Reel/Inland/01 Track 1.wav", "ID3")):
        _, meta = rows[source]
        assert meta["album"] and meta["provenance"]["album"] == f"tags ({expected})", (source, meta)


def test_an_album_never_straddles_splits_but_the_library_is_split(curated):
    albums = curated.assign(album=[json.loads(m)["album"] for m in curated["meta"]]).groupby("album")["split"]
    assert albums.nunique().max() == 1, albums.unique()
    assert curated["split"].nunique() >= 2                    # 4 albums, 3 fractions: not all in one split


def test_split_by_piece_splits_an_album_across_splits(library, tmp_path):
    config = CurationConfig(clip_s=2.0, min_clip_s=1.0, split_by="piece",
                            split_fractions={"train": 0.34, "valid": 0.33, "test": 0.33})
    manifest = curate_folder(library, tmp_path / "out", config).manifest
    per_album = manifest.assign(album=[json.loads(m)["album"] for m in manifest["meta"]]).groupby("album")["split"]
    assert per_album.nunique().max() > 1                      # the leak the album grouping prevents


def test_captions_say_the_genre_artist_and_mood_and_invent_nothing(curated):
    from components.captioning.analysis import AudioFeatures
    from components.captioning.captioner import TemplateCaptioner
    from components.captioning.config import CaptionConfig
    from components.captioning.tags import metadata_of, resolve_tags

    config, captioner = CaptionConfig(), TemplateCaptioner()
    rows = {r["source_file"]: r for r in curated.to_dict("records") if r["segment_index"] == 0}

    def canonical(source: str) -> str:
        row = rows[source]
        unheard = AudioFeatures(**{f.name: None for f in dataclasses.fields(AudioFeatures)})   # metadata only
        tags = resolve_tags(row["clip_id"], metadata_of(row), unheard, config)
        return captioner.caption(tags, 1, np.random.default_rng(0))[0]

    text = canonical("Ann Ode/Night Lines/02 Track 2.flac")
    assert "Jazz" in text and "Ann Ode" in text and "mellow" in text, text
    bare = canonical("Bo Reel/Inland/01 Track 1.wav")          # no genre tag, no mood: neither is said
    assert "Bo Reel" in bare and not any(w in bare.lower() for w in ("jazz", "folk", "mellow", "lively")), bare
    assert pd.notna(rows["Bo Reel/Harbour/01 Track 1.mp3"]["title"])


def test_a_metadata_table_lists_the_files_and_ranks_between_sidecar_and_tags(library, tmp_path):
    table = library / "catalogue.csv"
    pd.DataFrame([
        {"path": "Ann Ode/Night Lines/01 Track 1.flac", "genre": "Swing", "split": "", "label": "Blue Note"},
        {"path": "Ann Ode/Night Lines/02 Track 2.flac", "genre": "Swing", "split": "test", "label": ""},
        {"path": "Bo Reel/Harbour/01 Track 1.mp3", "genre": "", "split": "", "label": ""},
        {"path": "Bo Reel/Inland/02 Track 2.wav", "genre": "Ambient", "split": "ood", "label": "own"},
    ]).to_csv(table, index=False)
    try:
        manifest = curate_folder(table, tmp_path / "out", CurationConfig(clip_s=2.0, min_clip_s=1.0)).manifest
    finally:
        table.unlink()
    rows = {r["source_file"]: (r, json.loads(r["meta"])) for r in manifest.to_dict("records")}
    assert sorted(rows) == sorted(["Ann Ode/Night Lines/01 Track 1.flac", "Ann Ode/Night Lines/02 Track 2.flac",
                                   "Bo Reel/Harbour/01 Track 1.mp3", "Bo Reel/Inland/02 Track 2.wav"])
    _, meta = rows["Ann Ode/Night Lines/01 Track 1.flac"]       # sidecar (Bebop) > table (Swing) > tags (Jazz)
    assert (meta["genre"], meta["provenance"]["genre"], meta["label"]) == ("Bebop", "sidecar", "Blue Note")
    row, meta = rows["Ann Ode/Night Lines/02 Track 2.flac"]
    assert (meta["genre"], meta["provenance"]["genre"], row["split"]) == ("Swing", "table", "test")
    _, meta = rows["Bo Reel/Harbour/01 Track 1.mp3"]             # an empty cell is unknown: the tag stands
    assert (meta["genre"], meta["provenance"]["genre"]) == ("Folk", "tags (ID3)")
    assert rows["Bo Reel/Inland/02 Track 2.wav"][0]["split"] == "ood"


def test_a_malformed_table_is_rejected_whole_naming_every_bad_row(library, tmp_path, capsys):
    from components.cli import main as lyra

    table = tmp_path / "catalogue.csv"
    for rel in ("Ann Ode/Night Lines/02 Track 2.flac", "Bo Reel/Harbour/01 Track 1.mp3"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).symlink_to(library / rel)
    table.write_text("path,bpm,split\n"
                     "Ann Ode/Night Lines/02 Track 2.flac,fast,\n"
                     "Bo Reel/Harbour/01 Track 1.mp3,,training\n"
                     "Bo Reel/Harbour/09 Missing.mp3,,\n"
                     "Ann Ode/Night Lines/02 Track 2.flac,96,\n"
                     "../outside.wav,,\n")
    out = tmp_path / "curated"
    assert lyra(["curate", "--input", str(table), "--out", str(out)]) == 2
    message = capsys.readouterr().err.strip()
    assert message.count("\n") == 0 and f"{table}: 5 bad row(s), nothing curated" in message, message
    for problem in ("line 2: bpm 'fast' is not a number", "line 3: split 'training' is not one of",
                    "line 4: Bo Reel/Harbour/09 Missing.mp3: no such file", "line 5: Ann Ode/Night Lines/02 Track 2.flac "
                    "is listed twice", "line 6: path '../outside.wav' must be relative"):
        assert problem in message, (problem, message)
    assert not out.exists()
    table.write_text("file,genre\nx.wav,Jazz\n")
    assert lyra(["curate", "--input", str(table), "--out", str(out)]) == 2
    assert "no `path` column (columns: file, genre)" in capsys.readouterr().err


def test_an_s3_prefix_is_mirrored_and_curated_and_a_bad_one_is_one_clear_line(library, tmp_path, monkeypatch, capsys):
    import boto3

    from components.cli import main as lyra
    from tests.infra.services import seaweedfs_s3

    with seaweedfs_s3(tmp_path / "s3", buckets=("catalogue",)) as s3:
        monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        client = boto3.client("s3", endpoint_url=s3.endpoint, aws_access_key_id=s3.access_key,
                              aws_secret_access_key=s3.secret_key, region_name="us-east-1")
        names = ["Bo Reel/Harbour/01 Track 1.mp3", "Bo Reel/Harbour/02 Track 2.mp3", "Ann Ode/Day Lines/01 Track 1.ogg"]
        for name in names:
            client.upload_file(str(library / name), "catalogue", f"team/{name}")
        out = tmp_path / "data" / "curated"
        assert lyra(["curate", "--input", "s3://catalogue/team", "--out", str(out)]) == 0, capsys.readouterr().err
        manifest = pd.read_parquet(out / "manifest.parquet")
        assert sorted(manifest["source_file"].unique()) == sorted(names)
        assert json.loads(manifest["meta"][0])["artist"] in ("Bo Reel", "Ann Ode")     # tags survive the trip

        import dagster as dg

        from orchestration.defs.sensors import raw_audio_sensor_for

        sensor = raw_audio_sensor_for("s3://catalogue/team", name="test_s3_source", first="corpus")
        seen = sensor.evaluate_tick(dg.build_sensor_context(cursor=None))
        assert "watching 3 files in s3://catalogue/team" in seen.skip_message

        client.delete_object(Bucket="catalogue", Key=f"team/{names[0]}")             # the library changes
        client.upload_file(str(library / "Bo Reel/Inland/01 Track 1.wav"), "catalogue", "team/Bo Reel/Inland/01.wav")
        (request,) = sensor.evaluate_tick(dg.build_sensor_context(cursor=seen.cursor)).run_requests   # the sensor sees it
        assert "corpus" in {k.to_user_string() for k in request.asset_selection}
        assert lyra(["curate", "--input", "s3://catalogue/team", "--out", str(out)]) == 0
        manifest = pd.read_parquet(out / "manifest.parquet")
        assert sorted(manifest["source_file"].unique()) == sorted([*names[1:], "Bo Reel/Inland/01.wav"])
        capsys.readouterr()

        for url, expected in (("s3://catalogue/no-such-prefix", "no objects under this prefix"),
                              ("s3://no-such-bucket/team", "s3://no-such-bucket/team: ")):
            assert lyra(["curate", "--input", url, "--out", str(tmp_path / "other")]) == 2
            err = capsys.readouterr().err.strip()
            assert err.count("\n") == 0 and expected in err and "Traceback" not in err, err
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
        assert lyra(["curate", "--input", "s3://catalogue/team", "--out", str(tmp_path / "other")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "s3://catalogue/team: " in err, err
        denied = sensor.evaluate_tick(dg.build_sensor_context(cursor=seen.cursor))    # a reason, not a traceback
        assert not denied.run_requests and denied.skip_message.startswith("s3://catalogue/team: ")


def test_a_near_duplicate_across_splits_is_dropped_and_counted(tmp_path):
    from components.curation.curate import curation_metrics

    folder = tmp_path / "library"
    folder.mkdir()
    audio = synth_music(4.0, 24_000, seed=7)
    for name, split in (("a take.wav", "train"), ("the same take, another album.wav", "test")):
        sf.write(folder / name, audio, 24_000)
        (folder / name).with_suffix(".json").write_text(json.dumps({"split": split}))
    config = CurationConfig(clip_s=2.0, min_clip_s=1.0)
    result = curate_folder(folder, tmp_path / "out", config)
    assert set(result.manifest["split"]) == {"train"}                 # nothing of the pair reaches test
    details = result.quarantine.loc[result.quarantine["reason"] == "duplicate", "detail"]
    assert len(details) == 2 and all("it was in test, the kept clip in train" in d for d in details)
    assert curation_metrics(result, config)["duplicates_across_splits"] == 2


def test_a_small_library_still_gets_a_valid_and_a_test_album(library, tmp_path):
    from components.curation.curate import curation_metrics

    config = CurationConfig(clip_s=2.0, min_clip_s=1.0)           # 0.8 / 0.1 / 0.1 of 4 albums: hashing alone
    result = curate_folder(library, tmp_path / "out", config)      # leaves valid or test empty
    manifest = result.manifest
    albums = manifest.assign(album=[json.loads(m)["album"] for m in manifest["meta"]]).groupby("album")["split"]
    assert albums.nunique().max() == 1                              # moved whole
    assert {"train", "valid", "test"} <= set(manifest["split"]), manifest["split"].value_counts()
    moved = curation_metrics(result, config)["groups_moved_to_held_out"]
    assert moved and all(m.startswith("album:") for m in moved), moved
    again = curate_folder(library, tmp_path / "again", config, previous=tmp_path / "out").manifest
    assert again["split"].tolist() == manifest["split"].tolist()   # a run reusing the rows ends the same
