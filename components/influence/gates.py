"""The rules an Influence model must pass (the blocking `influence_gate` and the registry apply them)."""

from __future__ import annotations


def influence_gate_decisions(metrics: dict, min_influence: float | None = 0.0, min_two_choice: float | None = 0.5,
                             max_flagged: float | None = 0.05, min_spliced_flagged: float | None = 0.9) -> dict[str, bool]:
    """The rules an Influence model must pass on held-out pieces (from `lyra influence train` metrics), by
    name; None turns a rule off. The reference makes its generations more like it (the paired gain of the
    influence index over the same seeds without the reference: its interval above `min_influence`; the
    index alone is not enough, generations without any reference already score above a random piece),
    each is closer to its own reference than to
    another (two-choice above `min_two_choice`), few are flagged as copies, and the copy detectors catch
    the spliced controls (a detector that flags nothing would pass the copy rule vacuously)."""
    rules = {}
    if min_influence is not None:
        rules["influences"] = bool(metrics["influence_gain_over_no_reference_ci95"][0] > min_influence)
    if min_two_choice is not None:
        rules["two_choice"] = bool(metrics["two_choice"] > min_two_choice)
    if max_flagged is not None:
        rules["not_copying"] = bool(metrics["flagged_generated"] <= max_flagged)
    if min_spliced_flagged is not None:
        rules["detectors_catch_copies"] = bool(metrics["flagged_spliced"] >= min_spliced_flagged)
    return rules
