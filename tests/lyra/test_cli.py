"""The commands: `lyra generate` (user) and `lyra lm sample` (pipeline stage), end to end."""

import json

import numpy as np
import pytest
import soundfile as sf

from components.cli import main as lyra

pytestmark = pytest.mark.slow


def test_generate_writes_a_reproducible_wav_and_its_recipe(trained, sine_codec, style_prompts, tmp_path):
    model_dir = trained[0]
    args = ["generate", "style 1 in a hurry", "--seconds", "3", "--model", str(model_dir), "--codec", str(sine_codec),
            "--seed", "7", "--temperature", "0.8", "--top-k", "8"]
    assert lyra([*args, "--out", str(tmp_path / "a.wav")]) == 0
    assert lyra([*args, "--out", str(tmp_path / "b.wav")]) == 0
    audio_a, sr = sf.read(tmp_path / "a.wav")
    audio_b, _ = sf.read(tmp_path / "b.wav")
    assert sr == 16_000 and np.array_equal(audio_a, audio_b)            # same seed, same music
    assert 2.5 <= len(audio_a) / sr <= 3.0                              # about as long as asked (it may end early)
    record = json.loads((tmp_path / "a.json").read_text())
    assert record["seed"] == 7 and record["sampling"]["top_k"] == 8 and record["sampling"]["temperature"] == 0.8
    assert record["model"]["digests"]["model.safetensors"] and "lyra generate" in record["reproduce"]
    assert record["seconds_generated"] == pytest.approx(len(audio_a) / sr)

    assert lyra([*args[:-4], "--seed", "8", "--out", str(tmp_path / "c.wav")]) == 0
    assert not np.array_equal(sf.read(tmp_path / "c.wav")[0][:len(audio_a)], audio_a)


def test_generate_explains_bad_requests(trained, sine_codec, style_prompts, tmp_path, capsys):
    base = ["generate", "style 0", "--codec", str(sine_codec), "--out", str(tmp_path / "x.wav")]
    assert lyra([*base, "--model", str(tmp_path / "nowhere")]) == 2
    assert "no Lyra model" in capsys.readouterr().err
    assert lyra([*base, "--model", str(trained[0]), "--seconds", "-1"]) == 2
    assert "positive" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()


def test_train_explains_a_missing_token_folder(tmp_path, capsys):
    assert lyra(["lm", "train", "--tokens", str(tmp_path / "none"), "--out", str(tmp_path / "model")]) == 2
    assert "not a token-shard folder" in capsys.readouterr().err
    assert not (tmp_path / "model").exists()


def test_sample_stage_shows_that_the_text_matters(trained, synthetic_tokens, sine_codec, style_prompts, tmp_path):
    model_dir, _, _ = trained
    tokens, _ = synthetic_tokens
    params = tmp_path / "params.yaml"
    params.write_text("profile: tiny\ntiny:\n  generate: {n_prompts: 6, sample_seconds: 4, n_classes: 3, cfg: 3.0}\n")
    out, metrics_path = tmp_path / "samples", tmp_path / "metrics.json"
    code = lyra(["lm", "sample", "--model", str(model_dir), "--codec", str(sine_codec), "--tokens", str(tokens),
                 "--out", str(out), "--metrics", str(metrics_path), "--params", str(params)])
    assert code == 0
    metrics = json.loads(metrics_path.read_text())
    wavs = sorted(out.glob("*.wav"))
    assert len(wavs) == 6 and len(list(out.glob("0*.json"))) == 6
    assert (out / "spectrograms.png").stat().st_size > 1000 and (out / "lineage.json").is_file()
    assert metrics["n_classes"] == 3 and metrics["real_heldout_accuracy"] == 1.0
    assert metrics["conditioning_accuracy"] >= 0.8 > metrics["chance"]       # the caption's style comes out
    assert metrics["conditioning_accuracy"] > metrics["unconditional_accuracy"]
    # and in the decoded audio (the sine codec's pitch follows codebook 0)
    assert metrics["probe_label"] == "caption_class" and metrics["audio_real_heldout_accuracy"] >= 0.8
    assert metrics["audio_conditioning_accuracy"] >= 0.8 > metrics["audio_unconditional_accuracy"]
    # the model's own likelihood finds each piece's caption among the prompts, real or generated
    assert metrics["caption_retrieval_real"] > metrics["caption_retrieval_chance"]
    assert metrics["caption_retrieval_generated"] > metrics["caption_retrieval_chance"]
    assert metrics["caption_gap_real_nats"] > 0 and metrics["caption_gap_generated_nats"] > 0
    assert metrics["silent_fraction"] == 0.0 and metrics["length_ratio_mean"] > 0.8
    sample = json.loads(wavs[0].with_suffix(".json").read_text())
    assert sample["prompt"].startswith("style ") and "--seed" in sample["reproduce"]
