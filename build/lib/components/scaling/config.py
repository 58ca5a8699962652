"""Typed configuration of the scaling sweep: the `scaling` params section.

Defaults are the `tiny` profile: 9 sweep runs + 1 held-out larger run + 4 runs on a 2-codebook
codec, each a real `lyra lm train` of a few hundred steps, two at a time on 2 cores (~4 min).

    sweep grid      3 widths x 3 step budgets = 9 runs        -> fit L(N, D)
    held-out run    wider and longer than every sweep run      -> predicted by the fit, never fitted
    codebook runs   the first k RVQ levels of the same tokens  -> how the fit moves with bitrate

Every run is the `lm` section of the active profile (the very training `lyra_pretrain` does)
with the run's width and steps and the `lm` overrides below on top.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from components.config import StageConfig


class SweepModel(StageConfig):
    """One model size of the sweep (the rest of `lm.model` comes from the profile)."""

    dim: int = Field(gt=0)
    n_layers: int = Field(gt=0)
    n_heads: int = Field(gt=0)


class HeldOutRun(StageConfig):
    model: SweepModel
    steps: int = Field(gt=0)


class ScalingConfig(StageConfig):
    """The `scaling` params section."""

    sizes: list[SweepModel] = Field(default_factory=lambda: [
        SweepModel(dim=32, n_layers=2, n_heads=2),
        SweepModel(dim=64, n_layers=2, n_heads=4),
        SweepModel(dim=96, n_layers=2, n_heads=4),
    ])
    steps: list[int] = [60, 120, 240]    # token budgets as optimizer steps: D = steps x windows/step x frames/window
    # a run bigger than the sweep in both N and D, left out of the fit: the fit must predict its loss
    holdout: HeldOutRun = Field(default_factory=lambda: HeldOutRun(model=SweepModel(dim=128, n_layers=2, n_heads=4),
                                                                    steps=360))
    holdout_max_error: float = Field(0.05, gt=0)   # |predicted - measured| / measured the fit must stay under
    # codec variants: the first k of the K codebooks. With residual VQ trained with quantizer dropout,
    # those are exactly the codes the same codec emits at k/K of the bitrate (components/omnicodec/bitrate.py)
    codebooks: list[int] = [2]
    codebook_sizes: list[int] = [0, 2]   # indices into `sizes` trained on each codebook variant...
    codebook_steps: list[int] = [60, 240]  # ...at these step budgets (exponents shared with the main fit)
    # the `lm` section of the profile, with these values on top, trains every run
    lm: dict[str, Any] = Field(default_factory=lambda: {
        "nproc": 1, "eval_every": 0, "eval_windows": 32, "checkpoint_every": 100, "precision": "fp32"})
    warmup_fraction: float = Field(0.1, gt=0, lt=1)   # warm-up steps = this share of each run's steps
    parallel: int = Field(2, ge=1)       # runs trained at once (each `lm.nproc` processes)
    threads_per_run: int | None = 1      # OMP/torch threads per run process (None: as the environment sets)
    bootstrap: int = Field(200, ge=0)    # refits on resampled runs for the parameters' intervals
    confidence: float = Field(0.9, gt=0, lt=1)
    budgets: list[float] = [1e13, 1e14, 1e15, 1e16]   # compute budgets (6ND FLOPs) the report recommends for
    seed: int = 0

    @model_validator(mode="after")
    def _check(self):
        if len(self.sizes) < 2 or len(self.steps) < 2:
            raise ValueError("the sweep needs at least 2 sizes and 2 step budgets to separate N from D")
        if len(self.sizes) * len(self.steps) < 5:
            raise ValueError("the law has 5 parameters: the sweep needs at least 5 runs")
        for i in self.codebook_sizes:
            if not 0 <= i < len(self.sizes):
                raise ValueError(f"codebook_sizes: index {i} is not one of the {len(self.sizes)} sizes")
        for key in ("model", "steps", "warmup_steps"):
            if key in self.lm:
                raise ValueError(f"scaling.lm must not set {key!r}: the sweep sets it per run")
        return self
