"""The codec promotion rules: beat the untrained codec, carry the clip in the codes, do not regress."""

from components.omnicodec.gates import codec_gate_decisions

GOOD = {"visqol": 2.85, "mel_distance": 1.11, "code_information_mel_gap": 0.21,
        "untrained": {"visqol": 2.15, "mel_distance": 3.44}}


def failed(metrics, previous=None):
    return sorted(name for name, ok in codec_gate_decisions(metrics, previous).items() if not ok)


def test_a_codec_that_transmits_and_beats_the_untrained_one_passes():
    assert failed(GOOD) == []
    assert failed(GOOD, previous={"visqol": 2.88}) == []                  # within ViSQOL's noise


def test_a_decoder_that_ignores_its_codes_is_refused_even_with_good_scores():
    # the measured failure: one sound whatever the codes, yet lower mel distance and higher ViSQOL
    assert failed({**GOOD, "code_information_mel_gap": 0.000}) == ["codes_carry_the_clip"]
    assert failed({**GOOD, "code_information_mel_gap": None}) == ["codes_carry_the_clip"]
    assert codec_gate_decisions({**GOOD, "code_information_mel_gap": 0.0}, None, None) == {   # rule off
        "mel_distance_below_untrained": True, "visqol_above_untrained": True}


def test_no_gain_over_untrained_or_a_regression_is_refused():
    assert failed({**GOOD, "mel_distance": 3.5}) == ["mel_distance_below_untrained"]
    assert failed({**GOOD, "visqol": 2.2}) == ["visqol_above_untrained"]
    assert failed(GOOD, previous={"visqol": 3.2}) == ["no_regression_on_previous_version"]
