import pytest
import torch

from components.omnicodec.quantizer import ResidualVectorQuantizer, code_perplexity


def make_rvq(**kw) -> ResidualVectorQuantizer:
    torch.manual_seed(0)
    args = dict(latent_dim=16, num_codebooks=4, codebook_size=32, codebook_dim=4, quantizer_dropout=0.0)
    args.update(kw)
    return ResidualVectorQuantizer(**args)


def test_codes_in_range_and_factorised_lookup():
    rvq = make_rvq().eval()
    z = torch.randn(3, 16, 10)
    out = rvq(z)
    assert out.codes.shape == (3, 4, 10)
    assert 0 <= int(out.codes.min()) and int(out.codes.max()) < 32
    stage = rvq.stages[0]
    assert stage.codebook.shape == (32, 4)  # codes live in the 4-d projected space, not in D=16
    # l2-normalised lookup: the code depends on the direction of the projected latent only
    z_e = stage.in_proj(z)
    assert torch.equal(stage.nearest_codes(z_e), stage.nearest_codes(7.5 * z_e))
    cosine = torch.nn.functional.normalize(z_e.transpose(1, 2), dim=-1) @ \
        torch.nn.functional.normalize(stage.codebook, dim=-1).t()
    assert torch.equal(stage.nearest_codes(z_e), cosine.argmax(-1))


def test_encode_decode_agree_with_forward():
    rvq = make_rvq().eval()
    z = torch.randn(2, 16, 6)
    out = rvq(z)
    assert torch.equal(rvq.encode(z), out.codes)
    assert torch.allclose(rvq.decode(out.codes), out.z_q, atol=1e-5)
    for n in (1, 2, 3):
        assert torch.allclose(rvq(z, n_quantizers=n).z_q, rvq.decode(out.codes[:, :n]), atol=1e-5)


def test_quantizer_dropout_varies_the_number_of_codebooks():
    rvq = make_rvq(quantizer_dropout=1.0).train()
    seen = set()
    for seed in range(40):
        n = rvq.sample_n_quantizers(8, torch.Generator().manual_seed(seed))
        seen.update(n.tolist())
    assert seen == {1, 2, 3, 4}
    # each item's quantized latent is the sum of its first n stages only
    z = torch.randn(8, 16, 5)
    out = rvq(z, generator=torch.Generator().manual_seed(1))
    rvq.eval()
    for i, n in enumerate(out.n_quantizers.tolist()):
        expected = rvq.decode(out.codes[i:i + 1, :n])
        assert torch.allclose(out.z_q[i:i + 1], expected, atol=1e-5)
    # no dropout: everybody uses all stages; eval mode ignores dropout
    assert set(make_rvq(quantizer_dropout=0.0).train().sample_n_quantizers(16).tolist()) == {4}
    assert set(make_rvq(quantizer_dropout=1.0).eval().sample_n_quantizers(16).tolist()) == {4}


def test_gradients_reach_the_encoder_and_codes_follow_the_data():
    rvq = make_rvq().train()
    z = torch.randn(2, 16, 6, requires_grad=True)
    before = rvq.stages[0].codebook.clone()
    out = rvq(z)
    (out.z_q.pow(2).mean() + out.commitment_loss).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0  # straight-through estimator
    assert rvq.stages[0].in_proj.parametrizations.weight.original1.grad.abs().sum() > 0
    moved = (rvq.stages[0].codebook - before).norm(dim=1) > 0
    used = torch.unique(out.codes[:, 0])
    assert moved[used].all()  # every code used in the batch took an EMA k-means step towards its latents
    # and only items that kept a stage update it: with every item stopped at stage 1, stage 2 stays put
    rvq2 = make_rvq(quantizer_dropout=0.0).train()
    frozen = rvq2.stages[1].codebook.clone()
    rvq2(torch.randn(2, 16, 6), n_quantizers=1)
    assert torch.equal(rvq2.stages[1].codebook, frozen)


def test_dead_code_replacement_revives_unused_codes():
    rvq = make_rvq(num_codebooks=1).train()
    stage = rvq.stages[0]
    z = torch.randn(4, 16, 50)
    with torch.no_grad():  # one live code pointing at the data, every other code pointing away from it
        direction = torch.nn.functional.normalize(stage.in_proj(z).mean(dim=(0, 2)), dim=0)
        stage.set_codes(torch.ones(32, dtype=torch.bool), -direction.expand(32, 4))
        stage.set_codes(torch.arange(32) == 0, direction[None])
    used_before = torch.unique(rvq(z).codes).numel()
    report = rvq.replace_dead_codes(threshold=1.0, generator=torch.Generator().manual_seed(0))
    n_replaced, perplexity = report[0]
    assert n_replaced == 32 - used_before and perplexity < used_before + 1e-6
    assert float(stage.usage.sum()) == 0  # the usage window restarts
    used_after = torch.unique(rvq(z).codes).numel()
    assert used_after > 3 * used_before
    assert code_perplexity(rvq(z).codes, 32)[0] > 3


def test_data_initialisation_puts_codes_on_the_data():
    rvq = make_rvq(num_codebooks=2)
    z = torch.randn(8, 16, 40) + 3.0
    rvq.initialize_from_data(z, kmeans_iters=3, generator=torch.Generator().manual_seed(0))
    assert bool(rvq.initialized)
    stage = rvq.stages[0]
    z_e = stage.in_proj(z)
    assert torch.allclose(stage.centre, z_e.mean(dim=(0, 2)), atol=1e-5)  # the centre starts at the data mean
    z_e = stage.centred(z_e).transpose(1, 2).reshape(-1, 4)
    book = stage.codebook                                                  # codes live relative to the centre
    nearest = torch.cdist(book, z_e).min(dim=1).values
    assert nearest.median() < 0.5 * z_e.std(dim=0).mean() * 4 ** 0.5
    assert code_perplexity(rvq.eval().encode(z), 32)[0] > 8


def test_bad_codes_are_rejected():
    rvq = make_rvq().eval()
    with pytest.raises(ValueError):
        rvq.decode(torch.full((1, 2, 3), 32))
    with pytest.raises(ValueError):
        rvq.decode(torch.zeros(1, 5, 3, dtype=torch.long))
