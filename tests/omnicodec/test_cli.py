import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from components.cli import main
from components.omnicodec import load_codec
from components.omnicodec.model import build_codec
from tests.omnicodec.conftest import SMALL_MODEL
from tests.omnicodec.synthetic import harmonic_notes

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def model_dir(small_model_config, tmp_path):
    path = tmp_path / "model"
    build_codec(small_model_config, 0).save_pretrained(path, extra_config={"init_seed": 0})
    return path


def test_encode_decode_round_trip_of_a_stereo_44k_file(model_dir, tmp_path):
    tone = harmonic_notes(1.5, 44_100, np.random.default_rng(0))
    sf.write(tmp_path / "song.wav", np.stack([tone, 0.5 * tone], axis=1), 44_100)
    assert main(["codec", "encode", str(tmp_path / "song.wav"), "--model", str(model_dir),
                 "--out", str(tmp_path / "song.npz"), "--bitrate", "0.7", "--metrics", str(tmp_path / "enc.json")]) == 0
    data = np.load(tmp_path / "song.npz")
    # 64-entry codebooks at 50 Hz cost 6 bits x 50 = 0.3 kbps each: 0.7 kbps buys 2 of the 3;
    # 1.5 s at 50 Hz = 75 frames
    assert data["codes"].shape == (2, 75)
    assert int(data["source_sample_rate"]) == 44_100 and int(data["source_channels"]) == 2
    assert json.loads((tmp_path / "enc.json").read_text())["bitrate_kbps"] == 0.6

    assert main(["codec", "decode", str(tmp_path / "song.npz"), "--model", str(model_dir),
                 "--out", str(tmp_path / "back.wav")]) == 0
    audio, sr = sf.read(tmp_path / "back.wav")
    assert sr == 24_000 and audio.ndim == 1 and len(audio) == 36_000  # 1.5 s at the codec's rate, trimmed
    codec = load_codec(model_dir)
    assert np.isfinite(audio).all() and codec.num_codebooks == 3

    assert main(["codec", "decode", str(tmp_path / "song.npz"), "--model", str(model_dir),
                 "--out", str(tmp_path / "back44.wav"), "--sample-rate", "44100"]) == 0
    assert sf.info(tmp_path / "back44.wav").samplerate == 44_100


def test_bad_inputs_get_a_message_not_a_traceback(model_dir, tmp_path, capsys):
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    assert main(["codec", "encode", str(tmp_path / "junk.wav"), "--model", str(model_dir),
                 "--out", str(tmp_path / "x.npz")]) == 2
    assert "cannot read audio" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()
    sf.write(tmp_path / "ok.wav", np.zeros(4800, dtype=np.float32), 24_000)
    assert main(["codec", "encode", str(tmp_path / "ok.wav"), "--model", str(model_dir),
                 "--out", str(tmp_path / "x.npz"), "--bitrate", "0.2"]) == 2
    assert "below one codebook" in capsys.readouterr().err
    assert main(["codec", "train", "--curated", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m")]) == 2
    assert "manifest.parquet" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_eval_scores_trained_and_untrained_at_each_bitrate(model_dir, curated, tmp_path):
    # the "trained" model here is a copy of the untrained one with its codebooks initialised from
    # data, so the report must show both sides and the per-bitrate table; ViSQOL runs on one clip
    metrics_path = tmp_path / "metrics.json"
    args = ["codec", "eval", "--model", str(model_dir), "--curated", str(curated), "--out", str(tmp_path / "eval"),
            "--metrics", str(metrics_path), "--params", str(tmp_path / "none.yaml"),
            "--set", "max_clips=1", "--set", "clip_seconds=1.5", "--set", "n_quantizers=[1,3]"]
    (tmp_path / "none.yaml").write_text("profile: tiny\n")
    assert main(args) == 0
    m = json.loads(metrics_path.read_text())
    assert m == json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert [r["n_quantizers"] for r in m["per_bitrate"]] == [1, 3]
    assert m["bitrate_kbps"] == pytest.approx(0.9) and m["n_quantizers"] == 3 and m["split"] == "test" and m["n_clips"] == 1
    assert 1.0 <= m["visqol"] <= 5.0 and m["untrained"]["visqol"] is not None
    # same weights, same seed: the untrained reference reproduces the model exactly
    assert m["untrained"]["mel_distance"] == pytest.approx(m["mel_distance"])
    assert len(m["codebook_perplexity"]) == 3 and len(m["code_conditional_entropy_bits"]) == 3
    assert m["code_information_mel_gap"] is None  # one clip: no other clip to swap codes with
    assert (tmp_path / "eval" / "quality_vs_bitrate.png").is_file()
    # the out-of-distribution split is measured the same way, beside the held-out pieces
    ood = m["ood"]
    assert ood["n_clips"] == 1 and all(c.startswith("ood-") for c in ood["clip_ids"])
    assert [r["n_quantizers"] for r in ood["per_bitrate"]] == [1, 3] and m["ood_visqol"] == ood["visqol"]
    assert m["ood_minus_in_distribution_visqol"] == pytest.approx(ood["visqol"] - m["visqol"])


@pytest.mark.slow
def test_two_process_gloo_training(curated, tmp_path):
    params = tmp_path / "params.yaml"
    small = {"model": SMALL_MODEL, "nproc": 2, "steps": 4, "batch_size": 2, "crop_seconds": 0.2,
             "checkpoint_every": 2, "log_every": 2, "valid_every": 0, "valid_clips": 1, "init_batches": 1,
             "dead_code_interval": 2, "adv_start_step": 2, "disc_channels": 4, "mpd_periods": [2],
             "stft_windows": [256], "n_examples": 1}
    import yaml

    params.write_text(yaml.safe_dump({"profile": "tiny", "tiny": {"codec": small}}))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "components.cli", "codec", "train", "--curated", str(curated),
         "--out", str(tmp_path / "model"), "--params", str(params), "--metrics", str(tmp_path / "m.json")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "world size 2" in proc.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["steps"] == 4
    assert load_codec(tmp_path / "model").num_codebooks == 3
