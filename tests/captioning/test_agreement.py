"""Agreement arithmetic on constructed cases."""

import math

import pytest

from components.captioning.agreement import flat_metrics, metre_class, summarise, tempo_agreement


def test_tempo_agreement_strict_and_octave():
    assert tempo_agreement(100, 100) == (True, True)
    assert tempo_agreement(107.9, 100) == (True, True)        # within 8 %
    assert tempo_agreement(109, 100) == (False, False)
    assert tempo_agreement(50, 100) == (False, True)           # half
    assert tempo_agreement(205, 100) == (False, True)          # double, within 8 % of 200
    assert tempo_agreement(60, 180) == (False, True)           # a third (triple metre)
    assert tempo_agreement(60, 180, metrical_factors=(2.0,)) == (False, False)
    assert tempo_agreement(150, 100) == (False, False)         # 3/2 is not an octave error


def test_summary_counts_and_rates():
    rows = [
        # tempo: strict hit, octave hit, miss, no metadata, no estimate
        dict(tempo_bpm=100, tempo_bpm_audio=103, key="C", mode="major", key_audio="C", mode_audio="major",
             meter="4/4", meter_audio="duple"),
        dict(tempo_bpm=80, tempo_bpm_audio=160, key="C", mode="major", key_audio="G", mode_audio="major",
             meter="3/4", meter_audio="duple"),
        dict(tempo_bpm=90, tempo_bpm_audio=130, key="a", mode="minor", key_audio="C", mode_audio="major",
             meter="6/8", meter_audio="duple"),
        dict(tempo_bpm=None, tempo_bpm_audio=120, key="D", mode="major", key_audio="D", mode_audio="minor",
             meter=None, meter_audio="triple"),
        dict(tempo_bpm=120, tempo_bpm_audio=None, key="B-", mode="major", key_audio="E", mode_audio="major",
             meter="3/4", meter_audio="triple"),
        dict(tempo_bpm=float("nan"), tempo_bpm_audio=100, key=None, mode=None, key_audio="C", mode_audio="major"),
    ]
    s = summarise(rows)
    assert s["n_clips"] == 6
    assert s["tempo"]["n_compared"] == 3
    assert s["tempo"]["acc1_strict"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["tempo"]["acc2_octave_tolerant"] == pytest.approx(2 / 3, abs=1e-4)
    k = s["key"]
    assert k["n_compared"] == 5
    assert k["relations"] == {"exact": 1, "fifth": 1, "relative": 1, "parallel": 1, "other": 1}
    assert k["exact"] == 0.2 and k["related"] == 0.8
    assert k["mirex_weighted"] == pytest.approx((1.0 + 0.5 + 0.3 + 0.2 + 0.0) / 5, abs=1e-4)
    assert k["mode"] == pytest.approx(3 / 5)                   # exact, fifth, other(E major vs Bb major)
    assert s["metre"]["n_compared"] == 4                        # 4/4, 3/4, 6/8, 3/4
    assert s["metre"]["duple_triple"] == pytest.approx(3 / 4)   # 3/4 heard as duple is the miss
    flat = flat_metrics(s)
    assert flat["tempo_acc1"] == s["tempo"]["acc1_strict"] and flat["key_mirex"] == k["mirex_weighted"]


def test_nothing_to_compare_gives_none_not_zero():
    s = summarise([dict(tempo_bpm_audio=100, key_audio="C", mode_audio="major")])
    assert s["tempo"]["n_compared"] == 0 and s["tempo"]["acc1_strict"] is None
    assert s["key"]["mirex_weighted"] is None
    assert not any(isinstance(v, float) and math.isnan(v) for v in flat_metrics(s).values())


@pytest.mark.parametrize("meter, expected", [("4/4", "duple"), ("2/2", "duple"), ("2/4", "duple"),
                                             ("3/4", "triple"), ("3/8", "triple"), ("6/8", "duple"),
                                             ("9/8", "triple"), ("12/8", "duple"), ("5/4", None), (None, None),
                                             ("duple", "duple"), ("free", None)])
def test_metre_class(meter, expected):
    assert metre_class(meter) == expected
