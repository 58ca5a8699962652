"""Learning-rate schedules, one place for every trainer that sets its own (step -> learning rate).

    warmup_cosine   Lyra, Influence   linear warm-up to the peak, then cosine decay to a floor (nanoGPT's get_lr)
    ramped_cosine   ORAQL             a cosine from the first step, scaled by a linear ramp over the first steps

OmniCodec decays exponentially with torch's ExponentialLR and RLAIF keeps TRL's constant rate: those
are the libraries' own schedulers, not written here.
"""

from __future__ import annotations

import math


def warmup_cosine(step: int, peak: float, warmup_steps: int, total_steps: int, floor: float = 0.0) -> float:
    """`peak * (step + 1) / warmup_steps` while warming up, then cosine from `peak` to `floor` at `total_steps`
    (held at `floor` after)."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return floor + 0.5 * (1.0 + math.cos(math.pi * progress)) * (peak - floor)


def ramped_cosine(step: int, peak: float, ramp_steps: int, total_steps: int) -> float:
    """A cosine from `peak` at step 0 to 0 at `total_steps`, times a linear ramp to 1 over `ramp_steps`
    (the warm-up overlaps the decay instead of preceding it)."""
    return peak * min(1.0, (step + 1) / ramp_steps) * 0.5 * (1 + math.cos(math.pi * step / total_steps))
