"""The reference conditioner: the bottleneck's shape and bit rate, and how it enters Lyra's prefix."""

import numpy as np
import pytest
import torch

from components.influence.train import attach_reference
from components.lyra.conditioners import Conditions
from tests.influence.conftest import K, V, influence_config, tiny_lyra


def _conditions(B, model, reference=None):
    c = Conditions.build(np.zeros((B, model.config.text_dim), np.float32), seconds_total=5.0)
    return c if reference is None else c.with_reference(reference)


@pytest.mark.parametrize("quantizer", ["rvq", "fsq"])
def test_bottleneck_shape_and_bits_per_second(tiny_codec, quantizer):
    model = tiny_lyra()
    cfg = influence_config(quantizer=quantizer)
    ref = attach_reference(model, cfg, tiny_codec)
    # 2 s at 10 Hz = 20 frames, stride 5 -> 4 tokens at 2 Hz; 3 codebooks of 8 codes = 3 bits each
    assert (ref.frames, ref.stride, ref.n_tokens) == (20, 5, 4)
    assert ref.bits_per_second(1) == pytest.approx(1 * 3 * 2.0)
    assert ref.bits_per_second() == pytest.approx(3 * 3 * 2.0)
    codes = torch.randint(0, V, (5, K, 20))
    ref.eval()
    for q in (1, 2, 3):
        z_q, bottleneck = ref.encode(codes, n_quantizers=q)
        assert z_q.shape == (5, 4, cfg.width) and bottleneck.shape == (5, q, 4)
        assert int(bottleneck.max()) < cfg.codebook_size
    # the bits the LM can receive are bounded by the codes: identical codes -> identical prefix
    z1, c1 = ref.encode(codes[:1], n_quantizers=1)
    z2, c2 = ref.encode(codes[:1].clone(), n_quantizers=1)
    assert torch.equal(c1, c2) and torch.allclose(z1, z2)
    with pytest.raises(ValueError, match="reference codes must be"):
        ref.encode(torch.randint(0, V, (1, K, 19)))


def test_fsq_codes_are_grid_indices_and_every_code_is_reachable():
    from components.lyra.reference import ResidualFSQ, fsq_levels

    assert fsq_levels(64) == [4, 4, 4] and fsq_levels(8) == [4, 2]
    with pytest.raises(ValueError):
        fsq_levels(48)
    q = ResidualFSQ(16, num_codebooks=2, codebook_size=8, quantizer_dropout=0.0).eval()
    torch.manual_seed(0)
    out = q(torch.randn(64, 16, 50) * 3, n_quantizers=2)
    assert out.codes.shape == (64, 2, 50) and int(out.codes.min()) >= 0 and int(out.codes.max()) < 8
    assert len(torch.unique(out.codes[:, 0])) == 8                # no codebook to collapse: all 8 codes in use
    one = q(torch.randn(3, 16, 5), n_quantizers=1)
    assert one.codes.shape == (3, 1, 5)
    x = torch.randn(2, 16, 5, requires_grad=True)
    q.train()
    q(x).z_q.sum().backward()                                    # straight-through: the encoder gets a gradient
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_reference_tokens_join_the_prefix_and_dropping_gives_the_null(tiny_codec):
    model = tiny_lyra()
    attach_reference(model, influence_config(), tiny_codec)
    assert model.config.prefix_len == 1 + 4 + 3 and model.condition.n_prefix == 8
    ref = model.condition.reference
    torch.nn.init.normal_(ref.out.weight)                 # as after training (fresh outputs are zero)
    torch.nn.init.normal_(ref.step.weight)
    model.eval()
    refs = torch.randint(0, V, (2, K, 20))
    cond = _conditions(2, model, refs)
    fused = model.condition(cond, torch.float32)
    assert fused.prefix.shape == (2, 8, 32)
    dropped = model.condition(cond.drop("reference", torch.tensor([True, False])), torch.float32)
    assert torch.allclose(dropped.prefix[0, 1:5], ref.null) and torch.allclose(dropped.prefix[1], fused.prefix[1])
    none = model.condition(_conditions(2, model), torch.float32)     # no reference given: the null as well
    assert torch.allclose(none.prefix[:, 1:5], ref.null.expand(2, -1, -1))
    codes = torch.full((2, K, 6), V + 1)
    logits = model(codes=codes, conditions=cond).logits
    assert logits.shape == (2, K, 6, V + 1)


def test_a_model_without_the_conditioner_refuses_a_reference():
    model = tiny_lyra()
    assert model.condition.reference is None and model.config.prefix_len == 4
    with pytest.raises(ValueError, match="no reference conditioner"):
        model(codes=torch.full((1, K, 3), V + 1), conditions=_conditions(1, model, torch.zeros(1, K, 20, dtype=torch.long)))


def test_double_guidance_has_one_scale_per_condition():
    from components.lyra.sampling import SamplingParams, guidance_branches, guide

    text = torch.zeros(2, 384)
    c = Conditions.build(text, seconds_total=4.0).with_reference(torch.zeros(2, K, 20, dtype=torch.long))
    branches, scales = guidance_branches(c, SamplingParams(cfg=2.0, cfg_reference=5.0))
    assert scales == [2.0, 5.0] and len(branches) == 3
    assert branches[0].has("text") and branches[1].has("reference") and not branches[1].has("text")
    assert branches[2].is_unconditional()
    full, ref_only, none = torch.randn(3, 2, K, V + 1).unbind(0)
    guided = guide(torch.cat([full, ref_only, none]), 2, scales, end=None)
    assert torch.allclose(guided, none + 5.0 * (ref_only - none) + 2.0 * (full - ref_only), atol=1e-5)
    # text only (no reference): the old two-branch guidance, unchanged
    branches, scales = guidance_branches(Conditions.build(text, seconds_total=4.0), SamplingParams(cfg=3.0))
    assert len(branches) == 2 and scales == [3.0]
    # reference only (text dropped): reference guidance alone
    branches, scales = guidance_branches(c.drop("text"), SamplingParams(cfg=3.0, cfg_reference=4.0))
    assert len(branches) == 2 and scales == [4.0]


@pytest.mark.parametrize("quantizer", ["rvq", "fsq"])
def test_a_saved_conditioner_encodes_as_it_did_before_saving(tiny_codec, tmp_path, quantizer):
    from components.lyra.model import LyraForMusicGeneration

    model = tiny_lyra()
    ref = attach_reference(model, influence_config(quantizer=quantizer), tiny_codec)
    codes = torch.randint(0, V, (6, K, 20))
    ref.train()
    ref.encode(codes)                                     # the RVQ's data initialisation
    model.eval()
    z, c = ref.encode(codes, n_quantizers=3)
    model.save_pretrained(tmp_path / "m")
    loaded = LyraForMusicGeneration.from_pretrained(tmp_path / "m", dtype=torch.float32).eval()
    assert loaded.config.reference_quantizer == quantizer
    z2, c2 = loaded.condition.reference.encode(codes, n_quantizers=3)
    assert torch.equal(c, c2) and torch.allclose(z, z2, atol=1e-6)
