"""`lyra generate --best-of N`: N candidates in one generation call, ORAQL's best kept, every score recorded."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from components.cli import main as lyra

pytestmark = pytest.mark.slow


@pytest.fixture
def oraql_dir(tmp_path):
    from components.oraql.config import OraqlModelConfig
    from components.oraql.model import Oraql

    torch.manual_seed(0)
    Oraql(OraqlModelConfig(channels=[16, 32], head_hidden=16)).save_pretrained(tmp_path / "oraql")
    return tmp_path / "oraql"


def test_best_of_n_generates_one_batch_and_keeps_oraqls_pick(trained, sine_codec, style_prompts, oraql_dir, tmp_path,
                                                             monkeypatch):
    from components.lyra import generation
    from components.oraql.model import load_oraql
    from components.oraql.score import score_batch

    batches = []
    real = generation.generate_codes
    monkeypatch.setattr(generation, "generate_codes", lambda model, text, *a, **k: batches.append(len(text)) or real(model, text, *a, **k))
    out = tmp_path / "best.wav"
    args = ["generate", "style 2", "--seconds", "3", "--model", str(trained[0]), "--codec", str(sine_codec),
            "--seed", "3", "--best-of", "4", "--oraql", str(oraql_dir), "--out", str(out)]
    assert lyra(args) == 0
    assert batches == [4]                                        # the candidates came from one call
    record = json.loads(out.with_suffix(".json").read_text())["best_of"]
    assert record["n"] == 4 and len(record["scores"]) == 4 and len(set(record["scores"])) > 1
    assert record["chosen"] == int(np.argmax(record["scores"]))
    audio, sr = sf.read(out, dtype="float32")
    kept = score_batch(load_oraql(oraql_dir), [audio], sr)[0, 0]
    assert kept == pytest.approx(max(record["scores"]), abs=2e-3)      # the wav is the best candidate
    assert "--best-of 4" in json.loads(out.with_suffix(".json").read_text())["reproduce"]
    assert lyra([*args[:-4], "--oraql", str(tmp_path / "none"), "--best-of", "2", "--out", str(tmp_path / "x.wav")]) == 2
