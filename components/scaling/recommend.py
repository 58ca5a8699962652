"""The compute-optimal model: the N and D that minimise L(N, D) for a budget C = 6 N D.

On the constraint D = C / (6 N) the loss is E + A N^-alpha + B (6 N / C)^beta; setting its
derivative in N to zero gives (Hoffmann et al. 2022, eq. 4)

    N_opt = G (C/6)^a,   D_opt = (C/6)^b / G,   a = beta / (alpha + beta),  b = alpha / (alpha + beta),
    G = (alpha A / (beta B))^(1 / (alpha + beta))

so both grow with C (a, b > 0 and a + b = 1): a bigger budget buys a bigger model *and* more tokens.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from components.scaling.fit import ScalingLaw
from components.common.errors import LyraError

FLOPS_PER_PARAM_TOKEN = 6.0    # forward (2) + backward (4) multiply-adds per parameter per token (Kaplan)
FIT_FILE = "fit.json"          # what `lyra scaling sweep` writes into its output folder


class ScalingError(LyraError, RuntimeError):
    """A sweep or a fit file that cannot give an answer (reported as a message)."""


def load_fit(folder: str | Path) -> dict:
    path = Path(folder) / FIT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `lyra scaling sweep` (the lyra_scaling asset) first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ScalingError(f"{path}: not valid JSON ({exc})") from exc


@dataclasses.dataclass(frozen=True)
class Recommendation:
    flops: float
    params: float         # non-embedding parameters N
    tokens: float         # training frame positions D
    loss: float           # the law's predicted valid loss at (N, D)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def compute_optimal(law: ScalingLaw, flops: float) -> Recommendation:
    if flops <= 0:
        raise ValueError(f"the compute budget must be positive, got {flops}")
    if law.alpha <= 0 or law.beta <= 0 or law.A <= 0 or law.B <= 0:
        raise ValueError(f"the fitted law has no interior optimum (A, B, alpha, beta must be > 0): {law}")
    s = law.alpha + law.beta
    G = (law.alpha * law.A / (law.beta * law.B)) ** (1.0 / s)
    budget = flops / FLOPS_PER_PARAM_TOKEN
    N = G * budget ** (law.beta / s)
    D = budget ** (law.alpha / s) / G
    return Recommendation(flops=float(flops), params=float(N), tokens=float(D), loss=float(law.loss(N, D)))


def isoflop_curve(law: ScalingLaw, flops: float, params: np.ndarray) -> np.ndarray:
    """The law's loss along one budget: every N trained on D = C / (6 N) tokens."""
    params = np.asarray(params, dtype=float)
    return law.loss(params, flops / (FLOPS_PER_PARAM_TOKEN * params))
