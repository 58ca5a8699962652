"""Generating codes with Lyra: load a model, sampling settings from a config, codes for B prompts.

    text embeddings [B, 384] (+ reference codes [B, K, R]) --Sampler (KV cache, CFG, top-k/p)--> codes [B, K, T]

The library half of `lyra generate` (components/generate/), which the stages that generate use too:
the samples, ORAQL's ladder, best-of-n and RLAIF. It imports no registry, Influence or ORAQL code, so
editing those leaves the stages that only generate up to date.
"""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

import numpy as np
import torch

from components.common.lineage import file_digest
from components.lyra.conditioners import Conditions
from components.lyra.config import GenerateConfig
from components.lyra.errors import GenerationError  # noqa: F401 - raised here, imported from here by callers
from components.lyra.model import LyraForMusicGeneration
from components.lyra.sampling import Generated, Sampler, SamplingParams


def default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def load_model(model_dir: str | os.PathLike, device=None, precision: str = "fp32") -> LyraForMusicGeneration:
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise GenerationError(f"{model_dir} holds no Lyra model (no config.json); train one with `lyra lm train`")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model = LyraForMusicGeneration.from_pretrained(model_dir, dtype=dtype)
    return model.to(device or default_device()).eval()


def sampling_params(cfg: GenerateConfig) -> SamplingParams:
    return SamplingParams(temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p, cfg=cfg.cfg,
                          cfg_reference=cfg.cfg_reference,
                          allow_end=cfg.allow_end, end_not_before=cfg.end_not_before,
                          continuation_overlap=cfg.continuation_overlap, decode_weights=cfg.decode_weights)


def generate_codes(model: LyraForMusicGeneration, text_embeddings: np.ndarray, seconds: float, params: SamplingParams,
                   seed: int, *, unconditional: bool = False, reference: torch.Tensor | None = None,
                   without_text: bool = False) -> tuple[Generated, float]:
    """Codes for B prompts of `seconds` each (fewer if the model ends a piece); also the wall time."""
    if seconds <= 0:
        raise GenerationError(f"--seconds must be positive, got {seconds}")
    if seconds > model.config.max_seconds:
        raise GenerationError(f"{seconds} s is longer than this model's timing range ({model.config.max_seconds} s)")
    device = next(model.parameters()).device
    n_frames = max(1, int(round(seconds * model.config.frame_rate)))
    conditions = Conditions.build(text_embeddings, seconds_total=float(seconds))
    if reference is not None:              # [1, K, R] (or [B, K, R]) codes of a reference excerpt
        conditions = conditions.with_reference(reference.expand(conditions.batch_size, -1, -1))
    if without_text:
        conditions = conditions.drop("text")
    if unconditional:
        conditions = conditions.unconditional()
    generator = torch.Generator(device=device).manual_seed(int(seed))
    sampler = Sampler(model, params)
    start = time.perf_counter()
    out = sampler.generate(conditions, n_frames, generator=generator)
    return out, time.perf_counter() - start


def model_identity(model_dir: Path) -> dict:
    files = [f for f in ("config.json", "model.safetensors") if (model_dir / f).is_file()]
    return {"path": os.fspath(model_dir), "digests": {f: file_digest(model_dir / f) for f in files}}


def reproduce_command(prompt: str | None, cfg: GenerateConfig, seconds: float, model: str, codec: str, out: str,
                      reference: str | None = None) -> str:
    head = ([prompt] if prompt else []) + (["--reference", reference, "--cfg-reference", f"{cfg.cfg_reference:g}"]
                                           if reference else [])
    argv = ["lyra", "generate", *head, "--seconds", f"{seconds:g}", "--seed", str(cfg.seed),
            "--temperature", f"{cfg.temperature:g}", "--top-k", str(cfg.top_k), "--top-p", f"{cfg.top_p:g}",
            "--cfg", f"{cfg.cfg:g}", "--model", model, "--codec", codec, "--out", out,
            "--set", f"allow_end={str(cfg.allow_end).lower()}", "--set", f"end_not_before={cfg.end_not_before:g}",
            "--set", f"continuation_overlap={cfg.continuation_overlap:g}",
            "--set", f"precision={cfg.precision}", "--set", f"decode_weights={cfg.decode_weights}"]
    return shlex.join(argv)
