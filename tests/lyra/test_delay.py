import pytest
import torch

from components.lyra.delay import build_delay_pattern, delay_valid_mask, revert_delay_pattern, shift_right

S = 99  # SPECIAL


def test_pattern_matches_the_drawing():
    codes = torch.tensor([[1, 2, 3, 4], [11, 12, 13, 14], [21, 22, 23, 24], [31, 32, 33, 34]])
    expected = torch.tensor([
        [1, 2, 3, 4, S, S, S],
        [S, 11, 12, 13, 14, S, S],
        [S, S, 21, 22, 23, 24, S],
        [S, S, S, 31, 32, 33, 34],
    ])
    assert torch.equal(build_delay_pattern(codes, S), expected)
    assert torch.equal(delay_valid_mask(4, 4), expected != S)


@pytest.mark.parametrize("K,T", [(1, 5), (2, 1), (4, 7), (8, 3), (4, 500)])
def test_build_revert_round_trip(K, T):
    codes = torch.randint(0, 50, (3, K, T))
    delayed = build_delay_pattern(codes, S)
    assert delayed.shape == (3, K, T + K - 1)
    assert torch.equal(revert_delay_pattern(delayed), codes)
    assert int((delayed == S).sum()) == 3 * K * (K - 1)       # K-1 pads per codebook


def test_shift_right_puts_bos_first():
    delayed = build_delay_pattern(torch.arange(8).view(1, 2, 4), S)
    inputs = shift_right(delayed, S)
    assert torch.equal(inputs[..., 0], torch.full((1, 2), S))
    assert torch.equal(inputs[..., 1:], delayed[..., :-1])


def test_revert_rejects_too_few_steps():
    with pytest.raises(ValueError):
        revert_delay_pattern(torch.zeros(1, 4, 2, dtype=torch.long))
