"""The transformer alone (random weights): KV cache exactness, Hugging Face and PEFT compatibility."""

import numpy as np
import pytest
import torch

from components.lyra.delay import build_delay_pattern, revert_delay_pattern, shift_right
from components.lyra.conditioners import Conditions
from components.lyra.decoder import StepDecoder
from components.lyra.model import KVCache, LyraConfig, LyraForMusicGeneration
from components.lyra.sampling import Sampler, SamplingParams

CONFIG = dict(codebook_size=32, hidden_size=64, num_attention_heads=4, num_hidden_layers=2, window_frames=24,
              n_text_tokens=2, frame_rate=10.0, max_seconds=30.0)


@pytest.fixture(scope="module", params=[True, False], ids=["text_every_step", "prefix_text_only"])
def model(request):
    """Both text paths: the prefix plus a per-step text bias (new models), the prefix alone (older ones)."""
    torch.manual_seed(0)
    model = LyraForMusicGeneration(LyraConfig(**CONFIG, text_every_step=request.param)).eval()
    if request.param:   # a visible bias (the init's is small), so a cache that dropped it would show
        torch.nn.init.normal_(model.condition.text.step.weight, std=0.5)
    return model


def conditioning(B) -> Conditions:
    g = torch.Generator().manual_seed(1)
    return Conditions(text=torch.randn(B, 384, generator=g), seconds_start=torch.tensor([0.0, 4.0])[:B],
                      seconds_total=torch.tensor([6.0, 9.0])[:B])


@torch.no_grad()
def test_cached_logits_equal_full_recomputation(model):
    cfg = model.config
    codes = torch.randint(0, cfg.codebook_size, (2, 4, 12))
    inputs = shift_right(build_delay_pattern(codes, cfg.special_id), cfg.special_id)      # [2, 4, 15]
    conditions = conditioning(2)
    full = model(inputs, conditions).logits

    cache = KVCache(cfg, 2, cfg.max_positions)
    prefill = model(inputs[:, :, :5], conditions, cache=cache).logits                        # prefix + 5 steps
    steps = [model(inputs[:, :, s:s + 1], cache=cache).logits for s in range(5, 8)]         # one at a time
    decoder = StepDecoder(model)                                                              # the sampler's fast path
    fast = [decoder.step(inputs[:, :, s], cache)[:, :, None] for s in range(8, 11)]
    chunk = model(inputs[:, :, 11:], cache=cache).logits                                     # a chunk on a full cache
    incremental = torch.cat([prefill, *steps, *fast, chunk], dim=2)
    torch.testing.assert_close(incremental, full, atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_int8_steps_follow_the_exact_next_code_distribution():
    """Weight-only int8 steps: close to exact (small KL, same argmax almost always), yet not exact."""
    torch.manual_seed(0)
    model = LyraForMusicGeneration(LyraConfig(**CONFIG)).eval()
    for module in model.modules():          # peaked distributions (the init's are near uniform)
        if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
            torch.nn.init.normal_(module.weight, std=0.15)
    cfg = model.config
    codes = torch.randint(0, cfg.codebook_size, (2, 4, 12))
    inputs = shift_right(build_delay_pattern(codes, cfg.special_id), cfg.special_id)
    conditions = conditioning(2)
    per_format = {}
    for weights in ("model", "int8"):
        decoder = StepDecoder(model, weights=weights)
        assert decoder.weights == weights
        cache = KVCache(cfg, 2, cfg.max_positions)
        model(inputs[:, :, :1], conditions, cache=cache)
        per_format[weights] = torch.stack([decoder.step(inputs[:, :, s], cache) for s in range(1, 15)]).log_softmax(-1)
    exact, int8 = per_format["model"], per_format["int8"]
    kl = (exact.exp() * (exact - int8)).sum(-1)
    assert 0 < kl.mean() < 2e-3 and kl.max() < 2e-2
    assert (exact.argmax(-1) == int8.argmax(-1)).float().mean() > 0.9
    assert exact.exp().max(-1).values.mean() > 5 / exact.shape[-1]   # the distributions were far from flat


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("weights", ["model", "int8"])
def test_guided_generation_runs_in_every_dtype_and_weight_format(dtype, weights):
    torch.manual_seed(0)
    model = LyraForMusicGeneration(LyraConfig(**CONFIG)).to(dtype).eval()
    conditions = conditioning(2).with_start(torch.zeros(2))
    out = Sampler(model, SamplingParams(cfg=3.0, allow_end=False, decode_weights=weights)).generate(
        conditions, 30, generator=torch.Generator().manual_seed(0))
    assert out.codes.shape == (2, 4, 30) and int(out.codes.max()) < model.config.codebook_size


def test_unknown_decode_weights_are_refused(model):
    with pytest.raises(ValueError, match="weights must be one of"):
        StepDecoder(model, weights="int4")


@torch.no_grad()
def test_greedy_generation_equals_full_recomputation(model):
    """Tokens chosen with the cache are the argmax of a from-scratch forward pass over the result."""
    cfg = model.config
    conditions = conditioning(2).with_start(torch.zeros(2))
    sampler = Sampler(model, SamplingParams(temperature=0.0, cfg=1.0, allow_end=False))
    out = sampler.generate(conditions, 20)                                                   # 20 < window: one pass
    delayed = build_delay_pattern(out.codes, cfg.special_id)
    logits = model(shift_right(delayed, cfg.special_id), conditions).logits
    logits[..., cfg.end_id] = -torch.inf                                                     # as with allow_end=False
    greedy = revert_delay_pattern(logits.argmax(-1))
    assert torch.equal(greedy, out.codes)


@torch.no_grad()
def test_guided_generation_with_cache_equals_full_recomputation(model):
    cfg = model.config
    conditions = conditioning(1).with_start(torch.zeros(1))
    sampler = Sampler(model, SamplingParams(temperature=0.0, cfg=2.5, allow_end=False))
    out = sampler.generate(conditions, 16)
    inputs = shift_right(build_delay_pattern(out.codes, cfg.special_id), cfg.special_id)
    cond = model(inputs, conditions).logits
    uncond = model(inputs, conditions.drop("text")).logits
    guided = uncond + 2.5 * (cond - uncond)
    guided[..., cfg.end_id] = -torch.inf
    assert torch.equal(revert_delay_pattern(guided.argmax(-1)), out.codes)


@torch.no_grad()
def test_prompt_frames_are_kept_and_continued(model):
    cfg = model.config
    conditions = conditioning(1).with_start(torch.zeros(1))
    prompt = torch.randint(0, cfg.codebook_size, (1, 4, 6))
    out = Sampler(model, SamplingParams(temperature=1.0, allow_end=False)).generate(
        conditions, 60, prompt=prompt, generator=torch.Generator().manual_seed(0))
    assert out.codes.shape == (1, 4, 60)                     # 60 frames > 24-frame window: continued 4 times
    assert torch.equal(out.codes[:, :, :6], prompt)
    assert int(out.codes.max()) < cfg.codebook_size and int(out.lengths[0]) == 60


def test_same_seed_same_music_other_seed_other_music(model):
    conditions = conditioning(1).with_start(torch.zeros(1))
    sampler = Sampler(model, SamplingParams(temperature=1.0, allow_end=False))
    a = sampler.generate(conditions, 30, generator=torch.Generator().manual_seed(3)).codes
    b = sampler.generate(conditions, 30, generator=torch.Generator().manual_seed(3)).codes
    c = sampler.generate(conditions, 30, generator=torch.Generator().manual_seed(4)).codes
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_hugging_face_save_load_round_trip(model, tmp_path):
    model.save_pretrained(tmp_path)
    assert {"config.json", "model.safetensors"} <= {p.name for p in tmp_path.iterdir()}
    loaded = LyraForMusicGeneration.from_pretrained(tmp_path).eval()
    assert loaded.config.codebook_size == 32 and loaded.config.window_frames == 24
    codes = torch.randint(0, 32, (2, 4, 9))
    conditions = conditioning(2)
    with torch.no_grad():
        torch.testing.assert_close(loaded(codes, conditions).logits, model(codes, conditions).logits, atol=0, rtol=0)


def test_peft_lora_wraps_the_attention_projections(model):
    import copy

    from peft import LoraConfig, get_peft_model

    base = copy.deepcopy(model).train()
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["qkv", "proj"]))
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    wrapped = {n.rsplit(".", 1)[0] for n, _ in peft_model.named_modules() if n.endswith(".lora_A")}
    layers = range(model.config.num_hidden_layers)
    assert wrapped == {f"base_model.model.blocks.{i}.attn.{m}" for i in layers for m in ("qkv", "proj")}

    codes = torch.randint(0, 32, (2, 4, 9))
    labels = torch.randint(0, 32, (2, 4, 9))
    before = {n: p.detach().clone() for n, p in peft_model.named_parameters() if p.requires_grad}
    optim = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    loss = peft_model(codes=codes, conditions=conditioning(2), labels=labels).loss
    loss.backward()
    optim.step()
    changed = [n for n, p in peft_model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    assert changed, "LoRA parameters did not train"
    frozen_head = dict(peft_model.named_parameters())["base_model.model.heads.weight"]
    assert torch.equal(frozen_head, model.heads.weight)      # the base model is untouched


def test_caption_retrieval_scores_each_piece_under_each_text(model):
    """nll[i, j] is the model's loss of piece i under text j, batched any way; retrieval and gap arithmetic."""
    from components.lyra.conditioning import caption_gap, caption_nll_matrix, retrieval_accuracy

    cfg = model.config
    rng = np.random.default_rng(0)
    pieces = [rng.integers(0, cfg.codebook_size, (cfg.num_codebooks, 7)) for _ in range(3)]
    texts = rng.normal(size=(3, cfg.text_dim)).astype(np.float32)
    timing = np.zeros(3), np.full(3, 5.0)
    nll = caption_nll_matrix(model, pieces, texts, *timing, batch_size=4)
    assert nll.shape == (3, 3) and np.isfinite(nll).all()
    # one entry by hand: the same forward pass the training loss uses
    one = caption_nll_matrix(model, pieces[1:2], texts[2:3], timing[0][:1], timing[1][:1])
    assert one[0, 0] == pytest.approx(nll[1, 2], rel=1e-5)
    # a text repeated in two columns counts as found in either; chance accounts for the repeat
    acc, chance = retrieval_accuracy(np.array([[0.5, 0.1, 1.0], [0.2, 0.3, 1.0], [1.0, 1.0, 0.1]]),
                                     np.array([[1.0], [1.0], [2.0]]))
    assert acc == 1.0 and chance == pytest.approx((2 / 3 + 2 / 3 + 1 / 3) / 3)
    assert caption_gap(np.array([[0.0, 1.0], [3.0, 1.0]])) == pytest.approx(1.5)
