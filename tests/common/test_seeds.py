"""One seed-derivation scheme: a stream per (seed, keys), the same stream the stages drew before sharing it."""

import zlib

import numpy as np

from components.common.seeds import derive_seed, rng, torch_generator


def test_streams_are_the_ones_the_stages_drew_before():
    # data windows and crops (lyra/data.py, omnicodec/data.py), captions (captioning/stage.py), dropout masks
    assert np.array_equal(rng(7, 3, 11).random(4), np.random.default_rng([7, 3, 11]).random(4))
    assert np.array_equal(rng(7, "clip-01").random(4), np.random.default_rng([7, zlib.crc32(b"clip-01")]).random(4))
    assert derive_seed(7, 3, 11) == int(np.random.SeedSequence([7, 3, 11]).generate_state(1)[0])


def test_every_key_matters_and_order_counts():
    seeds = {derive_seed(0), derive_seed(1), derive_seed(0, 1), derive_seed(0, 1, 2), derive_seed(0, 2, 1), derive_seed(0, "a"),
             derive_seed(0, -1), derive_seed(0, 1 << 40)}
    assert len(seeds) == 8
    import torch

    a, b = torch.rand(3, generator=torch_generator(5, 1)), torch.rand(3, generator=torch_generator(5, 1))
    assert torch.equal(a, b) and not torch.equal(a, torch.rand(3, generator=torch_generator(5, 2)))
