"""`lyra rlaif train` end to end on synthetic tokens, a sine codec and an audio reward: it learns, reports, resumes."""

import json

import numpy as np
import pytest
import torch

from components.cli import main as lyra

pytestmark = pytest.mark.slow

SETTINGS = ("profile: tiny\ntiny:\n  rlaif: {steps: 12, prompts_per_step: 2, num_generations: 4, lr: 0.01, "
            "checkpoint_every: 4, eval_prompts: 6, eval_samples: 2, seconds: 2.0, bootstrap: 500, best_of_n_max: 4, "
            "reward: 'tests.rlaif.test_stage:low_pitch', max_kl_per_code: 2.0, monitor_every: 5}\n")


def low_pitch(path, device):
    """An audio reward for the sine codec (codebook 0's code sets the pitch): lower sounds score higher."""

    def score(audio, sample_rate):
        out = []
        for a in audio:
            if len(a) < 256:
                out.append(-1.0)                                   # (nearly) nothing played
                continue
            spectrum = np.abs(np.fft.rfft(a))
            freqs = np.fft.rfftfreq(len(a), 1 / sample_rate)
            out.append(-float((spectrum * freqs).sum() / max(spectrum.sum(), 1e-9)) / 1000.0)
        return out

    return score


@pytest.fixture
def inputs(synthetic_tokens, sine_codec, tmp_path):
    from components.lyra.model import LyraConfig, LyraForMusicGeneration

    tokens, _ = synthetic_tokens
    torch.manual_seed(0)
    model_dir = tmp_path / "lyra"
    LyraForMusicGeneration(LyraConfig(num_codebooks=4, codebook_size=16, frame_rate=10.0, sample_rate=16_000,
                                      hidden_size=32, num_attention_heads=2, num_hidden_layers=2, window_frames=16,
                                      n_text_tokens=1, max_seconds=10.0, text_every_step=True)).save_pretrained(model_dir)
    params = tmp_path / "params.yaml"
    params.write_text(SETTINGS)
    return ["rlaif", "train", "--model", str(model_dir), "--codec", str(sine_codec), "--tokens", str(tokens),
            "--params", str(params)]


def test_post_training_raises_the_held_out_reward_and_reports_kl(inputs, judge_dir, tmp_path):
    out = tmp_path / "post"
    assert lyra([*inputs, "--judge", str(judge_dir), "--out", str(out), "--metrics", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["improved"] and metrics["reward_gain_ci95"][0] > 0            # held out, interval above zero
    assert metrics["reward_post_trained"] > metrics["reward_pretrained"]
    assert 0 < metrics["kl_nats_per_code"] <= metrics["max_kl_per_code"] and metrics["within_kl_bound"]
    assert metrics["kl_nats_per_piece"] > metrics["kl_nats_per_code"]
    assert metrics["best_of_n"] >= 1 and "reward_best_of_n" in metrics
    for key in ("diversity_pretrained", "diversity_post_trained", "silent_fraction_post_trained"):
        assert np.isfinite(metrics[key])
    # the independent judge took part: paired pre/post outcomes on every test sample, with a p-value
    assert metrics["eval_split"] == "test" and metrics["judge_n"] == 6 * 2
    for key in ("judge_instrument_accuracy_pretrained", "judge_instrument_accuracy_post_trained", "judge_p_post_worse"):
        assert 0.0 <= metrics[key] <= 1.0
    record = json.loads((out / "rlaif.json").read_text())
    assert record["test_prompts"] and not set(record["test_prompts"]) & set(record["valid_prompts"])
    assert 0.0 <= record["history"]["held_out"][-1][1]["judge_instrument_accuracy"] <= 1.0
    assert [s for s, _ in record["history"]["kl"]] == list(range(1, 13))           # KL reported every step
    assert [s for s, _ in record["history"]["held_out"]] == [0, 5, 10, 12]         # independent measures over steps
    assert {"reward", "diversity", "silent_fraction", "rms_dbfs"} <= set(record["history"]["held_out"][-1][1])
    assert (out / "reward_kl.png").stat().st_size > 1000 and (out / "lineage.json").is_file()
    from components.lyra.model import LyraForMusicGeneration

    assert isinstance(LyraForMusicGeneration.from_pretrained(out), LyraForMusicGeneration)
    assert not (tmp_path / ".post.checkpoints").exists()


def test_a_killed_run_resumes_from_its_checkpoint(inputs, tmp_path, monkeypatch):
    from components.rlaif import policy

    assert lyra([*inputs, "--out", str(tmp_path / "reference")]) == 0
    real = policy.LyraRollout.__call__

    def dies_at_step_6(self, prompts, trainer):
        if trainer.state.global_step == 6:
            raise KeyboardInterrupt("killed")
        return real(self, prompts, trainer)

    monkeypatch.setattr(policy.LyraRollout, "__call__", dies_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        lyra([*inputs, "--out", str(tmp_path / "resumed")])
    assert not (tmp_path / "resumed").exists()                                     # nothing half-written
    partial = tmp_path / ".resumed.checkpoints" / "checkpoint-6"                    # as if killed while saving
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"cut short")
    monkeypatch.setattr(policy.LyraRollout, "__call__", real)
    assert lyra([*inputs, "--out", str(tmp_path / "resumed")]) == 0
    resumed = json.loads((tmp_path / "resumed" / "rlaif.json").read_text())
    reference = json.loads((tmp_path / "reference" / "rlaif.json").read_text())
    assert resumed["metrics"]["resumed_from"] == "checkpoint-4"
    held, held_ref = resumed["history"]["held_out"], reference["history"]["held_out"]
    assert [s for s, _ in held] == [s for s, _ in held_ref] == [0, 5, 10, 12]           # the point before the kill kept
    np.testing.assert_allclose([m["reward"] for _, m in held], [m["reward"] for _, m in held_ref], rtol=1e-4)
    np.testing.assert_allclose([r for _, r in resumed["history"]["reward"]][-6:],
                               [r for _, r in reference["history"]["reward"]][-6:], rtol=1e-4)
