"""Codes the sampler generated before the one-step refactor, to hold the refactored code to them.

`python -m tests.lyra.golden --write` records, for each scenario below, the codes and lengths a
small model generates with a fixed seed, into golden_generation.json. The file committed beside
this one was recorded with the code of commit e23dd5a (three copies of the transformer step:
model.forward, StepDecoder._model_step, StepDecoder._int8_step); test_golden.py asserts the
current code reproduces it bit for bit.

The weights are drawn per parameter *name* (a generator seeded by the name's CRC), not in
construction order, so that moving modules around does not change the model: a parameter that
was renamed is listed in RENAMED (new name -> name at recording time).
"""

from __future__ import annotations

import argparse
import json
import zlib
from pathlib import Path

import torch

GOLDEN = Path(__file__).with_name("golden_generation.json")
CONFIG = dict(codebook_size=32, hidden_size=64, num_attention_heads=4, num_hidden_layers=2, window_frames=24,
              n_text_tokens=2, frame_rate=10.0, max_seconds=30.0)

# new parameter name -> its name when the golden codes were recorded (the conditioners were split
# out of model.ConditionPrefix into conditioners.py)
RENAMED: dict[str, str] = {
    "condition.text.tokens.weight": "condition.text_proj.weight", "condition.text.tokens.bias": "condition.text_proj.bias",
    "condition.text.null_text": "condition.null_text", "condition.text.step.weight": "condition.text_step.weight",
    "condition.text.step.bias": "condition.text_step.bias",
    **{f"condition.timing.{t}.mlp.{i}.{w}": f"condition.{t}.mlp.{i}.{w}" for t in ("start", "total", "remaining")
       for i in (0, 2) for w in ("weight", "bias")},
}

# name -> (sampling params, generate() arguments, model options)
SCENARIOS = {
    # temperature 1, no top-k/p, no guidance: the sampler's distribution is the model's
    "exact": (dict(temperature=1.0, top_k=0, cfg=1.0, allow_end=False), dict(B=2, n_frames=20), {}),
    "exact_prefix_text_only": (dict(temperature=1.0, top_k=0, cfg=1.0, allow_end=False), dict(B=2, n_frames=20),
                               {"text_every_step": False}),
    # the demo's settings, over three windows, ends allowed late
    "guided_topk_topp_windows": (dict(temperature=1.0, top_k=8, top_p=0.9, cfg=3.0, end_not_before=0.3),
                                 dict(B=2, n_frames=50), {}),
    "prompt_continuation": (dict(temperature=1.0, top_k=0, cfg=1.0, allow_end=False),
                            dict(B=1, n_frames=40, prompt=6, seconds_start=1.5), {}),
    "unconditional": (dict(temperature=1.0, top_k=0, cfg=3.0, allow_end=True), dict(B=2, n_frames=30,
                                                                                   unconditional=True), {}),
    "greedy_guided": (dict(temperature=0.0, cfg=2.5, allow_end=False), dict(B=2, n_frames=16), {}),
    "int8_guided": (dict(temperature=1.0, top_k=8, cfg=3.0, end_not_before=0.5, decode_weights="int8"),
                    dict(B=2, n_frames=40), {}),
    "int8_exact_one_row": (dict(temperature=1.0, top_k=0, cfg=1.0, allow_end=False, decode_weights="int8"),
                           dict(B=1, n_frames=30), {}),
    "bf16_exact": (dict(temperature=1.0, top_k=0, cfg=1.0, allow_end=False), dict(B=2, n_frames=20),
                   {"dtype": "bf16"}),
}


def name_seeded_model(text_every_step: bool = True, dtype: str = "fp32"):
    """The test model, its weights a function of the parameter names only (peaked distributions)."""
    from components.lyra.model import LyraConfig, LyraForMusicGeneration

    model = LyraForMusicGeneration(LyraConfig(**CONFIG, text_every_step=text_every_step))
    with torch.no_grad():
        for name, p in model.named_parameters():
            g = torch.Generator().manual_seed(zlib.crc32(RENAMED.get(name, name).encode()))
            noise = torch.randn(p.shape, generator=g)
            p.copy_(1.0 + 0.1 * noise if name.endswith("norm.weight") or ".norm" in name else 0.15 * noise)
    if dtype == "bf16":
        model = model.to(torch.bfloat16)
    return model.eval()


def generate(scenario: str):
    from components.lyra.conditioners import Conditions
    from components.lyra.sampling import Sampler, SamplingParams

    params, args, options = SCENARIOS[scenario]
    args = dict(args)
    model = name_seeded_model(**options)
    B, n_frames = args.pop("B"), args.pop("n_frames")
    g = torch.Generator().manual_seed(zlib.crc32(scenario.encode()))
    text = torch.randn(B, model.config.text_dim, generator=g)
    total = torch.full((B,), 4.0) + torch.arange(B)
    if "prompt" in args:
        args["prompt"] = torch.randint(0, model.config.codebook_size, (B, model.config.num_codebooks, args["prompt"]),
                                       generator=g)
    conditions = Conditions.build(text, seconds_total=total, seconds_start=args.pop("seconds_start", 0.0))
    if args.pop("unconditional", False):
        conditions = conditions.unconditional()
    out = Sampler(model, SamplingParams(**params)).generate(conditions, n_frames, generator=g, **args)
    return out


def record() -> dict:
    out = {}
    for name in SCENARIOS:
        generated = generate(name)
        out[name] = {"codes": generated.codes.tolist(), "lengths": generated.lengths.tolist(), "steps": generated.steps}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"(re)write {GOLDEN.name}")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = record()
    if args.write:
        GOLDEN.write_text(json.dumps(result) + "\n")
        print(f"wrote {GOLDEN}")
    else:
        same = GOLDEN.is_file() and json.loads(GOLDEN.read_text()) == result
        print("reproduces the golden codes" if same else "DIFFERS from the golden codes")


if __name__ == "__main__":
    main()
