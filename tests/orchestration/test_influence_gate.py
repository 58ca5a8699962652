"""The Influence gate: held-out influence above a random piece's, two-choice above chance, no copies, working detectors."""

from components.influence.gates import influence_gate_decisions

GOOD = {"influence_gain_over_no_reference_ci95": [0.2, 0.8], "two_choice": 0.85, "flagged_generated": 0.0,
        "flagged_spliced": 1.0, "n_references": 8}


def failed(metrics, **rules) -> list[str]:
    return sorted(name for name, ok in influence_gate_decisions(metrics, **rules).items() if not ok)


def test_a_good_model_passes():
    assert failed(GOOD) == []


def test_each_rule_stops_the_model_it_is_for():
    assert failed({**GOOD, "influence_gain_over_no_reference_ci95": [-0.1, 0.6]}) == ["influences"]   # reference adds nothing
    assert failed({**GOOD, "two_choice": 0.5}) == ["two_choice"]                    # cannot tell its references apart
    assert failed({**GOOD, "flagged_generated": 0.25}) == ["not_copying"]           # copies its references (2 of 8)
    assert failed({**GOOD, "flagged_spliced": 0.5}) == ["detectors_catch_copies"]   # detectors too blunt to trust


def test_the_copy_rules_read_intervals_not_one_reference():
    """One flagged generation of 8, or one spliced copy of 8 missed, is within the detector's noise: the
    verdict flipped between seeds when the rules read point shares."""
    assert failed({**GOOD, "flagged_generated": 0.125}) == []
    assert failed({**GOOD, "flagged_spliced": 0.875}) == []
    # with 64 references the same shares are evidence
    assert failed({**GOOD, "n_references": 64, "flagged_generated": 0.125}) == ["not_copying"]
    assert failed({**GOOD, "n_references": 64, "flagged_spliced": 0.75}) == ["detectors_catch_copies"]


def test_rules_can_be_switched_off():
    bad = {"influence_gain_over_no_reference_ci95": [-1.0, 0.0], "two_choice": 0.0, "flagged_generated": 1.0, "flagged_spliced": 0.0}
    assert influence_gate_decisions(bad, None, None, None, None) == {}
