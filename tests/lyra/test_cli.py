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
    assert "--seconds -1.0: must be greater than 0" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize("option,value,says", [
    ("--cfg", "-2", "--cfg -2.0: must be greater than or equal to 0"),
    ("--top-k", "-1", "--top-k -1: must be greater than or equal to 0"),
    ("--temperature", "-1", "--temperature -1.0: must be greater than or equal to 0"),
    ("--top-p", "2", "--top-p 2.0: must be less than or equal to 1"),
    ("--seed", "-1", "--seed -1: must be greater than or equal to 0"),
    ("--best-of", "0", "must be from 1 to 64 candidates, got 0"),
    ("--best-of", "100000", "must be from 1 to 64 candidates, got 100000"),      # died in the allocator before
    ("--best-of", "two", "not a whole number: 'two'"),
])
def test_generate_refuses_values_out_of_range_with_a_message(option, value, says, tmp_path, capsys):
    """Hostile values once accepted silently (--cfg -2, --top-k -1, --best-of 0) or ended in a traceback."""
    args = ["generate", "style 0", "--model", str(tmp_path / "unread"), "--out", str(tmp_path / "x.wav"), option, value]
    try:
        code = lyra(args)
    except SystemExit as exc:          # argparse's own refusal: usage + message, exit 2
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and says in err and "Traceback" not in err, err
    assert not (tmp_path / "x.wav").exists()


def test_train_explains_a_missing_token_folder(tmp_path, capsys):
    assert lyra(["lm", "train", "--tokens", str(tmp_path / "none"), "--out", str(tmp_path / "model")]) == 2
    assert "not a token-shard folder" in capsys.readouterr().err
    assert not (tmp_path / "model").exists()


def test_judge_learns_styles_from_real_audio_and_never_sees_held_out_pieces(judge_dir, tmp_path):
    metrics = json.loads((tmp_path / "judge.json").read_text())
    lineage = json.loads((judge_dir / "lineage.json").read_text())
    for head in ("instrument", "collection"):
        valid = metrics["heads"][head]["valid"]      # the synthetic corpus holds out `valid` pieces only
        assert valid["n"] > 0 and valid["accuracy"] >= 0.8 > valid["majority_rate"]   # it hears the style
        assert str(metrics["heads"][head]["C"]) in metrics["heads"][head]["valid_accuracy_by_C"]
    assert metrics["clips"]["train"] > 0 and lineage["stage"] == "conditioning_judge"


def test_judge_refuses_a_corpus_whose_pieces_cross_splits(synthetic_tokens, sine_codec, tmp_path, capsys):
    import pandas as pd

    from tests.lyra.synthetic import write_curated_manifest

    tokens, facts = synthetic_tokens
    write_curated_manifest(tmp_path / "curated", facts["clips"])
    manifest = pd.read_parquet(tmp_path / "curated" / "manifest.parquet")
    held = manifest.index[manifest["split"] == "valid"][0]
    manifest.loc[held, "piece_id"] = manifest.loc[manifest["split"] == "train", "piece_id"].iloc[0]
    manifest.to_parquet(tmp_path / "curated" / "manifest.parquet", index=False)
    # the token index keeps its own piece ids; the judge checks the labels it trains and reports on
    code = lyra(["judge", "train", "--tokens", str(tokens), "--codec", str(sine_codec), "--curated",
                 str(tmp_path / "curated"), "--out", str(tmp_path / "judge")])
    assert code == 2 and "both train and held-out" in capsys.readouterr().err
    assert not (tmp_path / "judge").exists()


def test_sample_stage_shows_that_the_text_matters(trained, synthetic_tokens, sine_codec, style_prompts, judge_dir,
                                                  tmp_path):
    model_dir, _, _ = trained
    tokens, _ = synthetic_tokens
    params = tmp_path / "params.yaml"
    params.write_text("profile: tiny\ntiny:\n  generate: {n_prompts: 24, sample_seconds: 3, cfg: 3.0, batch_size: 12,"
                      " n_audio_examples: 4, length_requests: [2.0, 4.0], length_seeds: 3, self_consistency_prompts: 6}\n")
    out, metrics_path = tmp_path / "samples", tmp_path / "metrics.json"
    code = lyra(["lm", "sample", "--model", str(model_dir), "--codec", str(sine_codec), "--tokens", str(tokens),
                 "--judge", str(judge_dir), "--out", str(out), "--metrics", str(metrics_path), "--params", str(params)])
    assert code == 0
    metrics = json.loads(metrics_path.read_text())
    wavs = sorted(out.glob("0?_*[0-9].wav"))
    assert len(wavs) == 4 and len(list(out.glob("*.no_text.wav"))) == 4
    assert (out / "spectrograms.png").stat().st_size > 1000 and (out / "lengths.png").is_file()
    # no test pieces in the synthetic corpus: the prompts fall back to valid, and say so
    assert (out / "lineage.json").is_file() and metrics["prompt_split"] == "valid" and metrics["n_prompts"] == 24
    # the independent judge hears the prompted style in the generations, and not without the text
    assert metrics["judge_instrument_accuracy_real"] >= 0.8
    assert metrics["judge_instrument_accuracy_text"] >= 0.8 > metrics["judge_instrument_accuracy_no_text"]
    assert metrics["judge_instrument_p_text_vs_no_text"] < 0.01
    assert metrics["judge_instrument_share_of_real"] >= 0.7
    # lengths measured with END free: every requested length has its pieces
    assert set(metrics["length_control"]) == {"2s", "4s"} and metrics["length_control"]["4s"]["n"] == 3
    assert metrics["silent_fraction"] == 0.0
    sample = json.loads(wavs[0].with_suffix(".json").read_text())
    assert sample["prompt"].startswith("style ") and "--seed" in sample["reproduce"]
    assert set(sample["judge"]["instrument"]) == {"real", "text", "no_text"}
