"""Length control, measured: where does Lyra end a piece when it is free to?

The timing conditioning tells the model how long the piece should be (seconds_total); END is a
code it may emit. Here nothing forces it: END is allowed from the first frame (end_not_before 0),
and the frame budget runs past the request (`budget_ratio` x requested), so a model that ignores
its timing shows up as pieces that stop anywhere or run to the budget.

    requested r seconds, n seeds --Sampler(allow_end, end_not_before=0)--> END at frame e (or none)
    generated = e / frame_rate;  ran_to_budget = no END before budget_ratio * r
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from components.lyra.conditioners import Conditions
from components.lyra.sampling import Sampler, SamplingParams


def measure_lengths(model, text_embeddings: np.ndarray, requests: list[float], per_request: int,
                    params: SamplingParams, seed: int, budget_ratio: float = 1.5) -> list[dict]:
    """One row per generation: requested and generated seconds, and whether it ran to the budget."""
    free = dataclasses.replace(params, allow_end=True, end_not_before=0.0)
    sampler = Sampler(model, free)
    frame_rate = model.config.frame_rate
    rows = []
    for r_index, requested in enumerate(requests):
        pick = [(r_index * per_request + j) % len(text_embeddings) for j in range(per_request)]
        conditions = Conditions.build(text_embeddings[pick], seconds_total=float(requested))
        budget = max(1, int(round(budget_ratio * requested * frame_rate)))
        generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed + r_index)
        out = sampler.generate(conditions, budget, generator=generator)
        for j, length in enumerate(out.lengths.tolist()):
            rows.append({"requested_s": float(requested), "generated_s": length / frame_rate,
                         "ran_to_budget": int(length) >= budget, "prompt_row": pick[j]})
    return rows


def length_summary(rows: list[dict]) -> dict:
    """Per requested length: median generated seconds, median |error| as a share, share run to budget."""
    out = {}
    for requested in sorted({r["requested_s"] for r in rows}):
        mine = [r for r in rows if r["requested_s"] == requested]
        generated = np.array([r["generated_s"] for r in mine])
        out[f"{requested:g}s"] = {
            "n": len(mine), "median_generated_s": float(np.median(generated)),
            "median_relative_error": float(np.median(np.abs(generated - requested) / requested)),
            "ran_to_budget": float(np.mean([r["ran_to_budget"] for r in mine])),
        }
    return out


def plot_lengths(path, rows: list[dict]):
    """Generated against requested seconds, one dot per piece, with the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    req = np.array([r["requested_s"] for r in rows])
    gen = np.array([r["generated_s"] for r in rows])
    jitter = np.random.default_rng(0).uniform(-0.03, 0.03, len(req)) * req
    fig, ax = plt.subplots(figsize=(5, 4.2), dpi=100)
    top = max(req.max(), gen.max()) * 1.05
    ax.plot([0, top], [0, top], "k--", lw=1, label="as requested")
    ax.scatter(req + jitter, gen, s=18, alpha=0.7, label="END emitted (free to end anywhere)")
    ax.set_xlabel("requested seconds (timing conditioning)")
    ax.set_ylabel("generated seconds")
    ax.set_title(f"length control: {len(rows)} pieces")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
