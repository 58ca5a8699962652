"""The refactored transformer step generates exactly what the three-copy code generated (golden.py)."""

import json

import pytest
import torch

from tests.lyra.golden import GOLDEN, SCENARIOS, generate


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_generation_reproduces_the_recorded_codes_bit_for_bit(scenario):
    from components.lyra.decoder import int8_available

    if SCENARIOS[scenario][0].get("decode_weights") == "int8" and not int8_available():
        pytest.skip("this torch build has no weight-only int8 matmul")
    expected = json.loads(GOLDEN.read_text())[scenario]
    torch.set_num_threads(1)
    out = generate(scenario)
    assert out.codes.tolist() == expected["codes"]
    assert out.lengths.tolist() == expected["lengths"] and out.steps == expected["steps"]
