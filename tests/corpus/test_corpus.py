"""The demo corpus: schema, determinism, split by piece, graceful skips, bar-line cuts, score facts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from components.cli import main as lyra
from components.corpus import build as build_module
from components.corpus.build import TRACK_COLUMNS, assign_splits, build_corpus
from components.corpus.catalogue import INSTRUMENTS, Candidate
from components.corpus.config import CorpusConfig

SMALL = {"n_pieces": 3, "max_track_s": 8.0, "min_track_s": 3.0, "ood_pieces": 1, "workers": 1}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    base = tmp_path_factory.mktemp("corpus")
    params = base / "params.yaml"
    params.write_text("profile: tiny\n")
    argv = ["corpus", "build", "--out", str(base / "c1"), "--metrics", str(base / "metrics.json"),
            "--params", str(params)]
    for key, value in SMALL.items():
        argv += ["--set", f"{key}={value}"]
    assert lyra(argv) == 0
    return {"dir": base / "c1", "base": base, "tracks": pd.read_parquet(base / "c1" / "tracks.parquet"),
            "metrics": json.loads((base / "metrics.json").read_text())}


def test_tracks_table_wavs_and_sidecars_match_the_schema(corpus):
    tracks, out = corpus["tracks"], corpus["dir"]
    assert tuple(tracks.columns) == TRACK_COLUMNS
    assert len(tracks) == 7 and tracks["piece_id"].nunique() == 4 and tracks["track_id"].is_unique   # + 1 OOD track
    for row in tracks.to_dict("records"):
        wav, sidecar = out / "audio" / f"{row['track_id']}.wav", out / "audio" / f"{row['track_id']}.json"
        info = sf.info(wav)
        assert (info.samplerate, info.channels, info.subtype) == (24_000, 1, "PCM_16")
        assert info.frames / 24_000 == pytest.approx(row["duration_s"], abs=1e-3)
        assert 3.0 <= row["duration_s"] <= 8.0
        assert json.loads(sidecar.read_text()) == row
        assert INSTRUMENTS[row["instrument"]].program == row["program"]
        assert re.fullmatch(r"[A-G](b|#)?", row["key"]) and row["mode"] in ("major", "minor")
        assert re.fullmatch(r"\d+/\d+", row["meter"]) and 30 <= row["tempo_bpm"] <= 260
        assert "public domain" in row["licence"] and "TimGM6mb" in row["licence"]
        assert row["source"].startswith("music21 corpus: ")
        audio, _ = sf.read(wav, dtype="float32")
        assert np.max(np.abs(audio)) == pytest.approx(10 ** (-1 / 20), abs=1e-3)  # peak-normalised, not silent
    assert sorted(p.name for p in (out / "audio").iterdir()) == sorted(
        f"{t}.{ext}" for t in tracks["track_id"] for ext in ("json", "wav"))
    assert (out / "lineage.json").is_file() and (out / "durations_by_collection.png").is_file()


def test_metrics_describe_the_build(corpus):
    m, tracks = corpus["metrics"], corpus["tracks"]
    assert (m["n_tracks"], m["n_pieces"], m["skipped_scores"]) == (7, 4, 0)   # 3 x 2 instruments + 1 OOD x 1
    assert m["audio_seconds"] == pytest.approx(tracks["duration_s"].sum(), abs=0.01)
    assert m["train_pieces"] + m["valid_pieces"] + m["test_pieces"] == 3 and m["ood_pieces"] == 1
    assert m["build_seconds"] > 0 and m["x_realtime"] > 0


def test_same_seed_same_corpus(corpus):
    again = corpus["base"] / "c2"
    again.mkdir()
    build_corpus(CorpusConfig(**SMALL), again)
    pd.testing.assert_frame_equal(pd.read_parquet(again / "tracks.parquet"), corpus["tracks"])
    for track_id in corpus["tracks"]["track_id"]:
        name = f"audio/{track_id}.wav"
        assert (again / name).read_bytes() == (corpus["dir"] / name).read_bytes()


def test_splits_are_by_piece(corpus):
    tracks = corpus["tracks"]
    assert (tracks.groupby("piece_id")["split"].nunique() == 1).all()   # no piece in two splits
    assert set(tracks["split"]) == {"train", "valid", "test", "ood"}  # 3 pieces -> 1 / 1 / 1, + 1 OOD


def test_the_ood_set_plays_unseen_pieces_with_unseen_timbres(corpus):
    tracks = corpus["tracks"]
    ood, rest = tracks[tracks["split"] == "ood"], tracks[tracks["split"] != "ood"]
    config = CorpusConfig(**SMALL)
    assert set(ood["instrument"]) <= set(config.ood_instruments)
    assert not set(ood["instrument"]) & set(rest["instrument"])
    assert not set(ood["piece_id"]) & set(rest["piece_id"])


def test_ood_timbres_must_not_be_training_timbres():
    with pytest.raises(ValueError, match="also training instruments"):
        CorpusConfig(instruments=["piano", "oboe"], ood_instruments=["oboe"])


@pytest.mark.parametrize("n, expected", [(1, (1, 0, 0)), (3, (1, 1, 1)), (12, (8, 2, 2)), (40, (32, 4, 4)),
                                         (96, (76, 10, 10))])
def test_split_counts(n, expected):
    splits = assign_splits([f"piece-{i}" for i in range(n)], CorpusConfig())
    counts = tuple(sum(s == name for s in splits.values()) for name in ("train", "valid", "test"))
    assert counts == expected
    assert splits == assign_splits([f"piece-{i}" for i in reversed(range(n))], CorpusConfig())  # order-free


def test_a_bad_score_is_skipped_with_its_reason(tmp_path: Path, monkeypatch):
    real = build_module.candidate_order

    def with_a_broken_first(collections, seed):
        yield Candidate("bach", "bach/no_such_chorale.mxl", None, None, None)
        yield from real(collections, seed)

    monkeypatch.setattr(build_module, "candidate_order", with_a_broken_first)
    result = build_corpus(CorpusConfig(n_pieces=1, max_track_s=5.0, min_track_s=2.0, ood_pieces=0, workers=1), tmp_path)
    assert len(result.skipped) == 1 and "no_such_chorale" in result.skipped[0]["source"]
    assert result.skipped[0]["reason"]
    assert len({t["piece_id"] for t in result.tracks}) == 1 and result.candidates_tried == 2


def test_render_cuts_at_a_bar_line_and_fades_out():
    from components.corpus.render import render_midi
    from components.corpus.score import export_midi, load_score, score_facts

    chorale = Candidate("bach", "bach/bwv88.7.mxl", None, None, None)
    score = load_score(chorale)
    facts = score_facts(score, chorale, seed=0)
    assert facts.bar_offsets[:3] == (0.0, 1.0, 5.0)  # a one-beat pickup, then 4/4 bars
    # 60 quarter notes a minute: bar lines at 0, 1, 5, 9 ... s; budget 8 - 1 s release -> cut at 5 s
    audio = render_midi(export_midi(score), 0, sample_rate=24_000, max_s=8.0, release_s=1.0,
                        bar_offsets_ql=facts.bar_offsets, tempo_bpm=60.0)
    assert len(audio) == 6 * 24_000
    assert np.abs(audio[-100:]).max() < 1e-3 < np.abs(audio[: 5 * 24_000]).max()


def test_score_facts_take_the_prevailing_metre_not_the_pickup():
    from components.corpus.score import load_score, score_facts

    tune = Candidate("oneills1850", "oneills1850/0001-0050.abc", 1, "The Enchanted Valley", None)
    facts = score_facts(load_score(tune), tune, seed=0)
    assert facts.meter == "2/4"          # its first time signature is a 1/16 pickup bar
    assert facts.title == "The Enchanted Valley" and facts.composer.startswith("Traditional")
    assert not facts.tempo_from_score and 100 <= facts.tempo_bpm <= 160
    assert (facts.key, facts.mode) == ("G", "minor")  # K:Gm in the ABC source
