"""`lyra score`: one row per file, a corrupt file gets its own error row and the rest are scored."""

import csv
import io
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from components.cli import main as lyra
from components.oraql.config import OraqlModelConfig
from components.oraql.model import Oraql
from components.oraql.score import OraqlReward, score_batch, windows
from tests.oraql.synth import melody

SR = 24_000


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("oraql")
    torch.manual_seed(0)
    Oraql(OraqlModelConfig(channels=[16, 32], head_hidden=16, window_seconds=2.0)).save_pretrained(path)
    return path


@pytest.fixture
def folder(tmp_path):
    sf.write(tmp_path / "one.wav", melody(0, 3.0), SR)
    sf.write(tmp_path / "two.flac", melody(1, 5.0), SR)
    (tmp_path / "sub").mkdir()
    sf.write(tmp_path / "sub" / "three.ogg", melody(2, 1.5), SR)
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(40))    # a header, no audio
    (tmp_path / "notes.mp3").write_text("this is not audio")
    return tmp_path


def test_score_a_folder_with_corrupt_files(model_dir, folder, capsys):
    code = lyra(["score", str(folder), "--model", str(model_dir)])
    rows = {r["file"].split("/")[-1]: r for r in json.loads(capsys.readouterr().out)}
    assert code == 1                                          # some rows are errors
    assert set(rows) == {"one.wav", "two.flac", "three.ogg", "broken.wav", "notes.mp3"}
    for name in ("one.wav", "two.flac", "three.ogg"):
        assert rows[name]["error"] is None and 0 <= rows[name]["overall"] <= 1
        assert 0 <= rows[name]["fidelity"] <= 1 and 0 <= rows[name]["coherence"] <= 1
    assert rows["two.flac"]["windows"] == 3 and rows["two.flac"]["seconds"] == pytest.approx(5.0)
    assert rows["broken.wav"]["overall"] is None and rows["broken.wav"]["error"]
    assert rows["notes.mp3"]["error"].startswith("not_audio")


def test_score_writes_csv_and_a_missing_file_is_a_row(model_dir, folder, tmp_path):
    out = tmp_path / "scores.csv"
    code = lyra(["score", str(folder / "one.wav"), str(folder / "absent.wav"), "--model", str(model_dir), "--out", str(out)])
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert code == 1 and [r["file"].split("/")[-1] for r in rows] == ["one.wav", "absent.wav"]
    assert float(rows[0]["overall"]) >= 0 and rows[1]["error"].startswith("unreadable")


def test_score_without_a_model_says_so(folder, tmp_path, capsys):
    assert lyra(["score", str(folder), "--model", str(tmp_path / "none")]) == 2
    assert "no ORAQL model" in capsys.readouterr().err


def test_long_audio_is_the_mean_of_its_windows(model_dir):
    from components.oraql.model import load_oraql

    model = load_oraql(model_dir)
    audio = melody(3, 5.0, sr=16_000)
    parts = windows(audio, 32_000)
    assert [len(p) for p in parts] == [32_000, 32_000, 32_000]   # the last window ends at the end
    whole = score_batch(model, [audio], 16_000)[0]
    each = score_batch(model, parts, 16_000)
    assert np.allclose(whole, each.mean(axis=0), atol=1e-5)


def test_reward_is_batched_and_agrees_with_single_scores(model_dir):
    reward = OraqlReward(model_dir)
    clips = [melody(i, 2.0 + i) for i in range(3)]
    batched = reward.from_audio(clips, SR)
    single = [reward.from_audio([c], SR)[0] for c in clips]
    assert np.allclose(batched, single, atol=1e-5) and len(set(np.round(batched, 6))) == 3
