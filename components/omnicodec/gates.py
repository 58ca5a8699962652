"""OmniCodec's promotion rules, by name, from `lyra codec eval` metrics (the blocking `codec_gate` and
the registry apply them)."""

from __future__ import annotations


# ViSQOL of a few held-out clips moves by a few hundredths between runs of the same model
VISQOL_NOISE = 0.05
MIN_GAIN_OVER_UNTRAINED = 0.1


def codec_gate_decisions(metrics: dict, previous: dict | None, min_information_gap: float | None = 0.05) -> dict[str, bool]:
    """The promotion rules, by name, from `lyra codec eval` metrics and the last accepted gate's metadata.

    `min_information_gap` (codec_eval.gate_min_information_gap): decoding a clip from another
    clip's codes must be this much worse than from its own. An untrained codec scores ~0.005, a
    decoder that plays one sound whatever its codes 0.000, the tiny codec 0.2.
    """
    visqol, base = metrics.get("visqol"), metrics["untrained"].get("visqol")
    gates = {"mel_distance_below_untrained": metrics["mel_distance"] < metrics["untrained"]["mel_distance"]}
    if min_information_gap is not None:
        gap = metrics.get("code_information_mel_gap")
        gates["codes_carry_the_clip"] = gap is not None and gap >= min_information_gap
    if visqol is not None and base is not None:
        gates["visqol_above_untrained"] = visqol >= base + MIN_GAIN_OVER_UNTRAINED
    if previous is not None and visqol is not None and previous.get("visqol") is not None:
        gates["no_regression_on_previous_version"] = visqol >= previous["visqol"] - VISQOL_NOISE
    return gates


def codec_gate(metrics: dict, cfg, previous: dict | None = None) -> dict[str, bool]:
    """`codec_gate` as declared (components/omnicodec/declaration.py); cfg: CodecEvalConfig. `previous`: the
    accepted version to compare with (Dagster's check history; the registry compares against a stage's holder)."""
    return codec_gate_decisions(metrics, previous, cfg.gate_min_information_gap)
