"""What the sweep trains: the run specs, and the N and D each run stands for.

    N = non-embedding parameters: transformer blocks + text/timing conditioning, without the code
        embeddings and the K output heads (Kaplan et al. 2020: with them the small models'
        trends bend, because their size is set by the codec's vocabulary, not by the model)
    D = frames trained on = steps x windows per step x frames per window (each frame = K codes)
"""

from __future__ import annotations

from pathlib import Path

import torch

from components.config import deep_merge
from components.lyra.config import LMConfig, LyraModelConfig
from components.lyra.model import build_model
from components.scaling.config import ScalingConfig, SweepModel
from components.scaling.runs import RunSpec
from components.tokens.shards import read_meta

VOCABULARY_MODULES = ("codes_embed", "heads")


def non_embedding_params(model: LyraModelConfig, meta: dict) -> int:
    """N of a Lyra model with this shape on these tokens (built on the meta device: no memory, ~ms)."""
    with torch.device("meta"):
        lyra = build_model(model, num_codebooks=int(meta["num_codebooks"]), codebook_size=int(meta["codebook_size"]),
                           frame_rate=float(meta["frame_rate"]), sample_rate=int(meta["sample_rate"]),
                           text_dim=int(meta["text_dim"]))
    return sum(p.numel() for n, p in lyra.named_parameters() if not n.startswith(VOCABULARY_MODULES))


def frames_trained(lm: LMConfig) -> int:
    """D: every optimizer step sees micro_batch x grad_accum windows on each of nproc processes."""
    return lm.steps * lm.micro_batch * lm.grad_accum * lm.nproc * lm.model.window_frames


def run_config(base: LMConfig, cfg: ScalingConfig, size: SweepModel, steps: int) -> LMConfig:
    values = deep_merge(base.model_dump(mode="json"), cfg.lm)
    values = deep_merge(values, {"model": size.model_dump(), "steps": steps,
                                 "warmup_steps": max(1, round(cfg.warmup_fraction * steps))})
    return LMConfig.model_validate(values)


def size_name(size: SweepModel) -> str:
    return f"d{size.dim}-L{size.n_layers}"


def plan_runs(cfg: ScalingConfig, base: LMConfig, tokens: Path, variants: dict[int, Path]) -> list[RunSpec]:
    """The sweep grid, the held-out run, and the codebook variants' runs (`variants`: k -> token folder)."""
    K = int(read_meta(tokens)["num_codebooks"])
    specs = [RunSpec(f"{size_name(size)}-s{steps}", "sweep", run_config(base, cfg, size, steps), tokens, K)
             for size in cfg.sizes for steps in cfg.steps]
    h = cfg.holdout
    specs.append(RunSpec(f"{size_name(h.model)}-s{h.steps}", "holdout", run_config(base, cfg, h.model, h.steps), tokens, K))
    for k, folder in variants.items():
        for i in cfg.codebook_sizes:
            for steps in cfg.codebook_steps:
                size = cfg.sizes[i]
                specs.append(RunSpec(f"k{k}-{size_name(size)}-s{steps}", "codebooks",
                                     run_config(base, cfg, size, steps), folder, k))
    return specs
