"""A short run on synthetic tokens: Lyra learns, the text decides the music, the timing its length."""

import json

import numpy as np
import pytest
import torch

from components.lyra.conditioners import Conditions
from components.lyra.model import LyraForMusicGeneration
from components.lyra.sampling import Sampler, SamplingParams
from components.lyra.train import native_bf16
from tests.lyra.synthetic import FRAME_RATE, cycle_steps

pytestmark = pytest.mark.slow


def test_validation_loss_falls_well_below_the_unigram_baseline(trained):
    out, metrics, _ = trained
    history = json.loads((out / "training.json").read_text())["history"]
    first, last = history["train"][0][1], np.mean([l for _, l in history["train"][-20:]])
    assert last < 0.3 * first                                        # it learned
    assert metrics["val_loss"] < 0.5 * metrics["unigram_val_loss"]  # on held-out pieces, far below unigram
    assert (out / "loss_curve.png").stat().st_size > 1000
    assert (out / "model.safetensors").is_file() and (out / "lineage.json").is_file()
    # precision "auto": bf16 autocast where the CPU multiplies bf16 natively, so this run covers that path
    assert metrics["precision"] == ("bf16" if native_bf16(torch.device("cpu")) else "fp32")


@pytest.fixture(scope="module")
def model(trained):
    return LyraForMusicGeneration.from_pretrained(trained[0]).eval()


def test_the_caption_decides_the_music(model, trained):
    _, _, facts = trained
    text = torch.from_numpy(facts["embeddings"])                     # one prompt per style
    n = facts["n_classes"]
    cycles = facts["cycles"]

    def follows(codes, style) -> float:
        """Share of consecutive codebook-0 codes that are steps of `style`'s cycle."""
        steps = cycle_steps(cycles[style])
        return float(np.mean([(int(a), int(b)) in steps for a, b in zip(codes[:-1], codes[1:])]))

    guided = Sampler(model, SamplingParams(temperature=0.0, cfg=3.0, allow_end=False))
    out = guided.generate(Conditions.build(text, seconds_total=4.0), 24)
    for style in range(n):                                           # codebook 0 walks that style's cycle...
        codes = out.codes[style, 0].numpy()
        assert follows(codes, style) >= 0.9
        assert all(follows(codes, other) < 0.3 for other in range(n) if other != style)   # ...and no other

    # without the text, the opening cannot be told: the model spreads over the styles' first codes
    free = Sampler(model, SamplingParams(temperature=1.0, top_k=0))
    uncond = free.generate(Conditions.build(text[:1].expand(60, -1), seconds_total=4.0).unconditional(), 1,
                           generator=torch.Generator().manual_seed(0))
    openings = set(uncond.codes[:, 0, 0].tolist())
    assert len(openings & {int(c[0]) for c in facts["cycles"]}) >= 2


def test_timing_conditioning_sets_the_length(model, trained):
    """Asked for 2 s or 5 s (20 / 50 frames at 10 Hz, the latter across window boundaries), the model ends there."""
    _, _, facts = trained
    text = torch.from_numpy(facts["embeddings"]).repeat(2, 1)        # each style, twice
    sampler = Sampler(model, SamplingParams(temperature=0.0, cfg=3.0, allow_end=True))
    lengths = {}
    for seconds in (2.0, 5.0):
        out = sampler.generate(Conditions.build(text, seconds_total=seconds), 80)   # room for 8 s: the model must stop
        lengths[seconds] = out.lengths.float()
    assert lengths[2.0].mean() < lengths[5.0].mean() - 15
    for seconds, got in lengths.items():
        assert (got - seconds * FRAME_RATE).abs().median() <= 3, (seconds, got.tolist())


def test_an_early_end_can_be_held_off(model, trained):
    """`end_not_before`: asked for 5 s, the piece may end only in its last 10 %, whatever the model says."""
    _, _, facts = trained
    text = torch.from_numpy(facts["embeddings"])
    sampler = Sampler(model, SamplingParams(temperature=1.0, cfg=3.0, end_not_before=0.9))
    out = sampler.generate(Conditions.build(text, seconds_total=2.0), 50, generator=torch.Generator().manual_seed(0))
    assert (out.lengths >= 45).all()                                 # told 2 s, it would have ended at 20


def test_a_killed_run_resumes_where_it_stopped(synthetic_tokens, tmp_path, monkeypatch):
    """Interrupted after its step-20 checkpoint, the rerun resumes and ends exactly as an uninterrupted run."""
    from components.lyra import train as train_module
    from components.lyra.config import LMConfig
    from tests.lyra.conftest import TRAIN_SETTINGS

    tokens, _ = synthetic_tokens
    cfg = LMConfig.model_validate({**TRAIN_SETTINGS, "steps": 30, "checkpoint_every": 10, "eval_every": 0,
                                   "warmup_steps": 5})
    reference = train_module.train(cfg, tokens, tmp_path / "reference")

    real_lr = train_module.lr_at

    def dies_at_step_25(step, c):
        if step == 25:
            raise KeyboardInterrupt("killed")
        return real_lr(step, c)

    monkeypatch.setattr(train_module, "lr_at", dies_at_step_25)
    with pytest.raises(KeyboardInterrupt):
        train_module.train(cfg, tokens, tmp_path / "resumed")
    assert not (tmp_path / "resumed").exists()                       # nothing half-written
    monkeypatch.setattr(train_module, "lr_at", real_lr)
    resumed = train_module.train(cfg, tokens, tmp_path / "resumed")
    assert resumed["resumed_from_step"] == 20
    history = json.loads((tmp_path / "resumed" / "training.json").read_text())["history"]["train"]
    expected = json.loads((tmp_path / "reference" / "training.json").read_text())["history"]["train"]
    assert [s for s, _ in history] == list(range(30))
    np.testing.assert_allclose([l for _, l in history], [l for _, l in expected], rtol=1e-5)
    assert resumed["val_loss"] == pytest.approx(reference["val_loss"], rel=1e-5)


def test_test_is_scored_once_at_the_end_and_never_selects(tmp_path, monkeypatch):
    from components.lyra import train as train_module
    from components.lyra.config import LMConfig
    from tests.lyra.conftest import TRAIN_SETTINGS
    from tests.lyra.synthetic import write_synthetic_tokens

    tokens = tmp_path / "tokens"
    write_synthetic_tokens(tokens, with_test=True, pieces_per_class=12)
    calls = []
    real_evaluate = train_module.evaluate

    def spy(engine, held, *args, **kwargs):
        loss = real_evaluate(engine, held, *args, **kwargs)
        calls.append((held.split, loss))
        return loss

    monkeypatch.setattr(train_module, "evaluate", spy)
    torch.set_num_threads(1)
    cfg = LMConfig.model_validate({**TRAIN_SETTINGS, "steps": 60, "eval_every": 15, "checkpoint_every": 30})
    metrics = train_module.train(cfg, tokens, tmp_path / "lyra")

    splits = [split for split, _ in calls]
    assert splits.count("test") == 1 and splits[-1] == "test"      # once, and last: after every choice was made
    assert set(splits[:-2]) == {"valid"}                           # checkpoints were compared on valid only
    history = json.loads((tmp_path / "lyra" / "training.json").read_text())["history"]
    best_step = min(history["valid"], key=lambda entry: entry[1])[0]
    assert metrics["selected_step"] == best_step and metrics["selection_split"] == "valid"
    assert metrics["test_loss"] == calls[-1][1] and "test_vs_unigram" in metrics
    assert metrics["measured_peak_flops_per_device"] > 1e8 and 0 < metrics["mfu"] < 1   # against this machine's peak
