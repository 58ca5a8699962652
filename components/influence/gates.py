"""The rules an Influence model must pass (the blocking `influence_gate` and the registry apply them)."""

from __future__ import annotations

from components.common.stats import wilson_interval


def _count(share: float, n: int) -> int:
    return int(round(share * n))


def influence_gate_decisions(metrics: dict, min_influence: float | None = 0.0, min_two_choice: float | None = 0.5,
                             max_flagged: float | None = 0.05, min_spliced_flagged: float | None = 0.9) -> dict[str, bool]:
    """The rules an Influence model must pass on held-out pieces (from `lyra influence train` metrics), by
    name; None turns a rule off. The reference makes its generations more like it (the paired gain of the
    influence index over the same seeds without the reference: its interval above `min_influence`; the
    index alone is not enough, generations without any reference already score above a random piece),
    each is closer to its own reference than to
    another (two-choice above `min_two_choice`), few are flagged as copies, and the copy detectors catch
    the spliced controls (a detector that flags nothing would pass the copy rule vacuously).

    The copy rules are statements with a 95 % (Wilson) interval over the references, not point shares:
    with 8 references one flagged generation is a share of 0.125, and the detector's own false-alarm
    rate (its threshold is the 99th percentile of a null from different pieces) flags one in some seeds
    and not others (`lyra stability lyra_influence`: 1 of 5 seeds). Refused when the interval shows
    copying above `max_flagged` (its lower end above it), or detectors catching fewer than
    `min_spliced_flagged` of the spliced copies (its upper end below it)."""
    rules = {}
    n = int(metrics.get("n_references") or 0)
    if min_influence is not None:
        rules["influences"] = bool(metrics["influence_gain_over_no_reference_ci95"][0] > min_influence)
    if min_two_choice is not None:
        rules["two_choice"] = bool(metrics["two_choice"] > min_two_choice)
    if max_flagged is not None:
        low = wilson_interval(_count(metrics["flagged_generated"], n), n)[0] if n else metrics["flagged_generated"]
        rules["not_copying"] = bool(low <= max_flagged)
    if min_spliced_flagged is not None:
        high = wilson_interval(_count(metrics["flagged_spliced"], n), n)[1] if n else metrics["flagged_spliced"]
        rules["detectors_catch_copies"] = bool(high >= min_spliced_flagged)
    return rules


def influence_gate(metrics: dict, cfg) -> dict[str, bool]:
    """`influence_gate` as declared (components/influence/declaration.py); cfg: InfluenceConfig."""
    return influence_gate_decisions(metrics, cfg.gate_min_influence, cfg.gate_min_two_choice, cfg.gate_max_flagged,
                                    cfg.gate_min_spliced_flagged)
