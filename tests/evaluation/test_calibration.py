"""A calibrated table orders its rows as the sets differ and puts each system on the measured scale."""

import numpy as np

from components.evaluation.calibration import calibrated_table, markdown


def gaussian(seed: int, shift: float, n: int = 50, d: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


def test_rows_are_ordered_by_how_far_a_set_is_and_systems_sit_on_the_measured_scale():
    reference = gaussian(0, 0.0)
    table = calibrated_table(reference, floor=gaussian(1, 0.0), ceiling=gaussian(2, 0.3),
                             systems={"lyra": gaussian(3, 0.8)}, controls={"noise": gaussian(4, 3.0)}, n_resamples=50)
    by_kind = {r["kind"]: r for r in table["rows"]}
    assert by_kind["floor"]["kad"] < by_kind["ceiling"]["kad"] < by_kind["system"]["kad"] < by_kind["control"]["kad"]
    assert 0 < by_kind["system"]["position"] < 1 and by_kind["system"]["kad_over_ceiling"] > 1
    assert table["controls_rejected"]
    for row in table["rows"]:
        lo, hi = row["kad_interval"]
        assert lo <= row["kad"] <= hi
    text = markdown(table)
    assert text.count("\n") == 5 and "system: lyra | 50 |" in text


def test_a_control_the_evaluator_cannot_tell_from_real_music_voids_the_scale():
    reference = gaussian(0, 0.0)
    table = calibrated_table(reference, floor=gaussian(1, 0.0), controls={"blind": gaussian(5, 0.0)}, n_resamples=50)
    assert not table["controls_rejected"]
