"""The scaling law's check, by rule, from the sweep's fit.json (a warning: it sizes models, it ships none)."""

from __future__ import annotations


def scaling_law_gate(fit: dict, cfg) -> dict[str, bool]:
    """The fitted L(N, D) predicts the held-out larger run (never fitted) within its stated error, and its
    exponents and coefficients are positive, so a compute-optimal size exists."""
    holdout, law = fit["holdout"], fit["law"]
    return {
        "predicts_held_out_run": bool(holdout["relative_error"] <= holdout["max_error"]),
        "interior_optimum": bool(min(law["A"], law["B"], law["alpha"], law["beta"]) > 0),
    }
