"""`lyra caption` end to end on a small generated curated folder."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from components.cli import main as lyra

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def captioned(curated_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("captions") / "captions"
    metrics = out.parent / "metrics.json"
    rc = lyra(["caption", "--curated", str(curated_dir), "--out", str(out), "--metrics", str(metrics),
               "--set", "n_phrasings=4"])
    assert rc == 0
    return out, json.loads(metrics.read_text())


def test_one_row_per_manifest_clip_aligned_with_embeddings(curated_dir, captioned):
    out, metrics = captioned
    manifest = pd.read_parquet(curated_dir / "manifest.parquet")
    table = pd.read_parquet(out / "captions.parquet")
    emb = np.load(out / "embeddings.npy")
    assert list(table["clip_id"]) == list(manifest["clip_id"])          # every clip, manifest order
    assert emb.shape == (len(manifest), 4, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=-1), 1.0, atol=1e-5)
    assert all(len(c) == 4 and c[0] == first for c, first in zip(table["captions"], table["caption"]))
    # embeddings row i really is the captions of row i: re-encode one clip and compare
    from components.captioning.text_encoder import TextEncoder

    i = 2
    np.testing.assert_allclose(emb[i], TextEncoder().encode(list(table["captions"][i])), atol=1e-5)
    assert {"tempo_bpm_audio", "key_audio", "mode_audio", "tempo_bpm", "tempo_bpm_beats", "key", "mode", "meter",
            "instrument", "tags"} <= set(table.columns)
    jig = table.set_index("clip_id").loc["jig-piano-000"]
    assert (jig["tempo_bpm"], jig["tempo_bpm_beats"]) == (180.0, 120.0)       # 6/8: dotted-quarter beats
    assert (out / "lineage.json").is_file() and (out / "agreement.json").is_file()
    assert metrics["n_clips"] == len(manifest) and metrics["embedding_dim"] == 384


def test_tags_keep_both_sources_and_captions_state_metadata(captioned):
    out, _ = captioned
    table = pd.read_parquet(out / "captions.parquet").set_index("clip_id")
    chorale = json.loads(table.loc["bach-chorale-strings-000", "tags"])
    assert chorale["key"] == "G" and chorale["key_source"] == "metadata"
    assert chorale["metadata"]["tempo_bpm"] == 80.0 and chorale["audio"]["tempo_bpm"] > 0
    assert chorale["composer"] == "Bach" and chorale["era"] == "Baroque" and chorale["n_parts"] == 4
    first = table.loc["bach-chorale-strings-000", "caption"]
    for word in ("G major", "80 bpm", "Bach", "string ensemble", "4/4", "four-part"):
        assert word in first
    # no metadata: the caption states what the audio says
    unknown = json.loads(table.loc["unknown-000", "tags"])
    assert unknown["key_source"] == "audio" and (unknown["key"], unknown["mode"]) == ("A", "minor")
    assert "A minor" in table.loc["unknown-000", "caption"]


def test_agreement_on_the_known_clips(captioned):
    out, metrics = captioned
    report = json.loads((out / "agreement.json").read_text())
    assert report["key"]["n_compared"] == 4 and report["tempo"]["n_compared"] == 4   # 2 clips lack metadata
    assert metrics["key_exact"] == 1.0                      # synthetic cadences: the key is unambiguous
    assert metrics["tempo_acc2"] >= 0.75
    assert set(report["by_instrument"]) >= {"string ensemble", "church organ", "piano", "flute"}
    assert metrics["distinct_phrasing_fraction"] == 1.0
    assert metrics["cosine_within_clip"] > metrics["cosine_across_clips"]


def test_same_seed_same_output(curated_dir, captioned, tmp_path):
    out, _ = captioned
    again = tmp_path / "again"
    assert lyra(["caption", "--curated", str(curated_dir), "--out", str(again), "--set", "n_phrasings=4"]) == 0
    a, b = pd.read_parquet(out / "captions.parquet"), pd.read_parquet(again / "captions.parquet")
    assert a["captions"].map(list).tolist() == b["captions"].map(list).tolist()


def test_a_rerun_over_its_output_reuses_the_analysis_of_unchanged_clips_and_equals_a_fresh_run(curated_dir, captioned,
                                                                                           tmp_path):
    out, first = captioned
    assert first["clips_analysed"] == first["n_clips"] and first["clips_analysis_reused"] == 0
    again = tmp_path / "captions"
    shutil.copytree(out, again)
    changed = tmp_path / "curated"                     # one clip's audio changes: only that clip is analysed again
    shutil.copytree(curated_dir, changed)
    manifest = pd.read_parquet(changed / "manifest.parquet")
    clip = changed / manifest["path"][0]
    clip.write_bytes(clip.read_bytes()[:-200] + bytes(200))
    metrics = tmp_path / "metrics.json"
    assert lyra(["caption", "--curated", str(changed), "--out", str(again), "--metrics", str(metrics),
                 "--set", "n_phrasings=4"]) == 0
    second = json.loads(metrics.read_text())
    assert (second["clips_analysed"], second["clips_analysis_reused"]) == (1, first["n_clips"] - 1)
    fresh = tmp_path / "fresh"
    assert lyra(["caption", "--curated", str(changed), "--out", str(fresh), "--set", "n_phrasings=4"]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(again / "captions.parquet"), pd.read_parquet(fresh / "captions.parquet"))


def test_bad_input_is_a_clear_error_and_keeps_the_old_output(curated_dir, tmp_path, capsys):
    broken = tmp_path / "curated"
    shutil.copytree(curated_dir, broken)
    out = tmp_path / "out"
    out.mkdir()
    (out / "captions.parquet").write_text("previous version")
    (broken / "clips" / "jig-piano-000.wav").unlink()
    assert lyra(["caption", "--curated", str(broken), "--out", str(out)]) == 2
    assert "missing" in capsys.readouterr().err
    assert (out / "captions.parquet").read_text() == "previous version"
    (broken / "clips" / "waltz-flute-000.wav").write_bytes(b"not audio")
    shutil.copy(curated_dir / "clips" / "jig-piano-000.wav", broken / "clips" / "jig-piano-000.wav")
    assert lyra(["caption", "--curated", str(broken), "--out", str(out)]) == 2
    assert "waltz-flute-000" in capsys.readouterr().err
    assert lyra(["caption", "--curated", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert (out / "captions.parquet").read_text() == "previous version"


def test_parallel_analysis_matches_serial(curated_dir):
    from components.captioning.config import CaptionConfig
    from components.captioning.stage import analyse_clips, load_manifest
    from components.common.reporting import StageRun

    rows = load_manifest(curated_dir).to_dict("records")[:4]
    run = StageRun("test", None)
    serial = analyse_clips(curated_dir, rows, CaptionConfig(), run)
    parallel = analyse_clips(curated_dir, rows, CaptionConfig(workers=2), run)
    assert serial == parallel


def test_metadata_only_in_meta_json_still_reaches_the_table(tmp_path):
    from .conftest import write_curated
    from .synth import cadence

    curated = write_curated(tmp_path / "curated", [("a-000", cadence(0, "major", 100),
                                                    dict(key="C", mode="major", tempo_bpm=100.0))])
    manifest = pd.read_parquet(curated / "manifest.parquet").drop(columns=["key", "mode", "tempo_bpm"])
    manifest.to_parquet(curated / "manifest.parquet", index=False)
    out = tmp_path / "out"
    assert lyra(["caption", "--curated", str(curated), "--out", str(out), "--set", "n_phrasings=2"]) == 0
    row = pd.read_parquet(out / "captions.parquet").iloc[0]
    assert (row["key"], row["mode"], row["tempo_bpm"]) == ("C", "major", 100.0)
    assert json.loads((out / "agreement.json").read_text())["key"]["n_compared"] == 1
