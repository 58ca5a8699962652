"""Lyra as a policy: exact log-probs of codes, conditions as one object, loading through the Auto classes."""

import numpy as np
import pytest
import torch

from components.lyra.conditioners import ConditionDropout, Conditions
from components.lyra.model import LyraConfig, LyraForMusicGeneration
from components.lyra.sampling import Sampler, SamplingParams, code_log_probs
from tests.lyra.golden import CONFIG, name_seeded_model

EXACT = dict(temperature=1.0, top_k=0, top_p=0.0, cfg=1.0)


def conditions(B: int, seed: int = 0, start: float = 0.0) -> Conditions:
    g = torch.Generator().manual_seed(seed)
    return Conditions.build(torch.randn(B, 384, generator=g), seconds_total=torch.full((B,), 5.0) + torch.arange(B),
                            seconds_start=start)


@pytest.mark.parametrize("case", ["ends_over_three_windows", "prompt_and_start"])
def test_log_probs_equal_what_the_sampler_drew_from(case):
    """Scoring the sampler's own output gives, code for code, the log-probability it drew each code with."""
    torch.manual_seed(0)
    model = name_seeded_model()
    if case == "ends_over_three_windows":     # 50 frames through 24-frame windows; END allowed from frame 15
        params, c, prompt, n_frames = SamplingParams(**EXACT, end_not_before=0.3), conditions(6), None, 50
    else:
        params, c = SamplingParams(**EXACT, allow_end=False), conditions(3, seed=1, start=2.0)
        prompt, n_frames = torch.randint(0, 32, (3, 4, 5), generator=torch.Generator().manual_seed(2)), 30
    out = Sampler(model, params).generate(c, n_frames, prompt=prompt, generator=torch.Generator().manual_seed(7),
                                         record_log_probs=True)
    scored = code_log_probs(model, out.codes, out.lengths, c, params, n_prompt=0 if prompt is None else prompt.shape[-1])
    recorded = out.log_probs.permute(0, 2, 1)                                        # [B, T, K]
    torch.testing.assert_close(scored.per_code, recorded, atol=2e-5, rtol=1e-5)
    # exactly the drawn codes are scored: all K codes of each new frame before the end, and END itself
    n_prompt = 0 if prompt is None else prompt.shape[-1]
    ended = out.lengths < n_frames
    expected = ((out.lengths - n_prompt) * 4 + ended.long()).tolist()
    assert scored.drawn.sum(dim=(1, 2)).tolist() == expected
    assert bool((recorded[~scored.drawn] == 0).all()) and bool((scored.per_code[scored.drawn] < 0).all())
    if case == "ends_over_three_windows":
        assert ended.any() and (~ended).any()                                       # both kinds of piece occur
    torch.testing.assert_close(scored.total, scored.per_code.sum(dim=(1, 2)))


def test_log_probs_are_the_distribution_the_sampler_draws_from():
    """Independent of the sampler's bookkeeping: the first code's frequencies over many draws match
    exp(log-prob), and the log-probs of every possible first code sum to one."""
    model = name_seeded_model()
    params = SamplingParams(**EXACT, allow_end=False)
    n = 4000
    c = conditions(1).repeat_interleave(n)
    out = Sampler(model, params).generate(c, 1, generator=torch.Generator().manual_seed(0))
    V = model.config.codebook_size
    # every code of codebook 0 in frame 0 (the other codebooks fixed): their probabilities sum to one
    candidates = torch.zeros(V, 4, 1, dtype=torch.long)
    candidates[:, 0, 0] = torch.arange(V)
    with torch.no_grad():
        first = code_log_probs(model, candidates, torch.ones(V, dtype=torch.long), c[:V], params)
    p = first.per_code[:, 0, 0].exp()
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-5)
    counts = np.bincount(out.codes[:, 0, 0].numpy(), minlength=V)
    from scipy.stats import chisquare

    expected = p.double().numpy() / p.double().sum().item() * n      # (sums to 1 within 1e-5, checked above)
    keep = expected >= 5                                                # chi-square's validity rule
    observed, expected = counts[keep], expected[keep]
    if not keep.all():                                                  # the rare codes pooled into one bin
        observed, expected = np.append(observed, counts[~keep].sum()), np.append(expected, n - expected.sum())
    stat = chisquare(observed, expected)
    assert stat.pvalue > 1e-3, stat
    assert p.max() > 3 / V                                              # a peaked distribution, not uniform


def test_log_probs_are_differentiable_and_batch_independent():
    model = name_seeded_model().train()
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    params = SamplingParams(**EXACT, end_not_before=0.5)
    c = conditions(3)
    codes = torch.randint(0, 32, (3, 4, 30), generator=torch.Generator().manual_seed(3))
    lengths = torch.tensor([30, 20, 0])
    together = code_log_probs(model, codes, lengths, c, params)
    together.total.sum().backward()
    assert model.heads.weight.grad is not None and model.heads.weight.grad.abs().sum() > 0
    assert model.condition.text.tokens.weight.grad.abs().sum() > 0       # the text conditions the log-probs
    with torch.no_grad():
        alone = code_log_probs(model, codes[1:2], lengths[1:2], c[1:2], params)
    torch.testing.assert_close(alone.per_code, together.per_code[1:2].detach(), atol=1e-5, rtol=1e-5)
    assert int(together.drawn[2].sum()) == 1                                      # an immediate END: one code


def test_auto_classes_load_lyra_by_path(tmp_path):
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    model = name_seeded_model()
    model.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), LyraConfig)
    codes = torch.randint(0, 32, (2, 4, 9))
    for auto in (AutoModel, AutoModelForCausalLM):                  # TRL re-creates reference models this way
        loaded = auto.from_pretrained(tmp_path).eval()
        assert type(loaded) is LyraForMusicGeneration
        with torch.no_grad():
            torch.testing.assert_close(loaded(codes, conditions(2)).logits, model(codes, conditions(2)).logits,
                                       atol=0, rtol=0)


def test_models_saved_before_the_conditioners_moved_still_load(tmp_path):
    from safetensors.torch import load_file, save_file

    from tests.lyra.golden import RENAMED

    model = name_seeded_model()
    model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    save_file({RENAMED.get(k, k): v for k, v in weights.items()}, tmp_path / "model.safetensors",
              metadata={"format": "pt"})
    assert "condition.null_text" in load_file(tmp_path / "model.safetensors")
    loaded = LyraForMusicGeneration.from_pretrained(tmp_path).eval()
    for name, p in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], p), name


def test_conditions_drop_cat_and_index():
    c = conditions(3)
    assert not c.is_unconditional() and c.unconditional().is_unconditional()
    one = c.drop("text", torch.tensor([False, True, False]))
    both = Conditions.cat([c, one])
    assert both.batch_size == 6 and both.dropped["text"].tolist() == [False] * 3 + [False, True, False]
    assert one[1:2].is_unconditional() and not one[0:1].is_unconditional()
    assert c.repeat_interleave(2).seconds_total.tolist() == [5.0, 5.0, 6.0, 6.0, 7.0, 7.0]
    with pytest.raises(ValueError, match="cannot be dropped"):
        c.drop("timing")
    # a dropped text is the null prefix: the model cannot tell which text it was
    model = name_seeded_model()
    codes = torch.randint(0, 32, (3, 4, 6))
    other = Conditions.build(torch.randn(3, 384), seconds_total=c.seconds_total)
    with torch.no_grad():
        a = model(codes, c.unconditional()).logits
        b = model(codes, other.unconditional()).logits
        d = model(codes, c).logits
    assert torch.equal(a, b) and not torch.allclose(a, d)


def test_condition_dropout_rate_per_condition():
    drops = [ConditionDropout({"text": 0.3}).draw(np.random.default_rng([0, i]))["text"] for i in range(4000)]
    assert np.mean(drops) == pytest.approx(0.3, abs=0.03)
    assert not any(ConditionDropout({"text": 0.0}).draw(np.random.default_rng(i))["text"] for i in range(100))
    with pytest.raises(ValueError):
        ConditionDropout({"timing": 0.1})


def test_unconditional_generation_ignores_the_text():
    model = name_seeded_model()
    sampler = Sampler(model, SamplingParams(**{**EXACT, "cfg": 3.0}, allow_end=False))
    a = sampler.generate(conditions(2, seed=0).unconditional(), 12, generator=torch.Generator().manual_seed(1))
    b = sampler.generate(conditions(2, seed=5).unconditional(), 12, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.codes, b.codes)


def test_recording_log_probs_needs_exact_sampling():
    model = LyraForMusicGeneration(LyraConfig(**CONFIG)).eval()
    with pytest.raises(ValueError, match="exact sampling"):
        Sampler(model, SamplingParams(top_k=5)).generate(conditions(1), 3, record_log_probs=True)
