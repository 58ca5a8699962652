from __future__ import annotations

import pytest
import torch

from components.omnicodec.config import CodecConfig, CodecModelConfig
from tests.omnicodec.synthetic import make_curated

# a codec small enough that a training step takes milliseconds
SMALL_MODEL = dict(channels=4, decoder_channels=32, latent_dim=16, num_codebooks=3, codebook_size=64,
                   residual_dilations=[1, 3])


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def small_model_config() -> CodecModelConfig:
    return CodecModelConfig(**SMALL_MODEL)


def small_train_config(**overrides) -> CodecConfig:
    values = dict(model=SMALL_MODEL, steps=8, batch_size=2, crop_seconds=0.2, checkpoint_every=4, log_every=2,
                  valid_every=4, valid_clips=2, init_batches=1, kmeans_iters=2, dead_code_interval=3,
                  adv_start_step=4, disc_channels=4, mpd_periods=[2, 3], stft_windows=[256], n_examples=1)
    values.update(overrides)
    return CodecConfig(**values)


@pytest.fixture(scope="session")
def curated(tmp_path_factory):
    return make_curated(tmp_path_factory.mktemp("curated"), n_train=4, n_valid=2, n_test=2, n_ood=2, seconds=2.0)
