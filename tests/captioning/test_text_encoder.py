"""The offline sentence encoder: shape, normalisation, semantics, one model per process."""

import numpy as np
import pytest

from components.captioning.text_encoder import TextEncoder, _load


@pytest.fixture(scope="module")
def encoder():
    return TextEncoder()


def test_shape_dtype_and_unit_norm(encoder):
    e = encoder.encode(["a calm Baroque chorale in G major", "fast ragtime piano", "x"])
    assert e.shape == (3, 384) and e.dtype == np.float32 and encoder.dim == 384
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)


def test_similar_captions_are_closer_than_dissimilar(encoder):
    anchor, paraphrase, other = encoder.encode([
        "Baroque four-part chorale in G major, about 80 bpm, played by a string ensemble",
        "A string ensemble plays a slow Bach chorale in the key of G major",
        "Energetic ragtime piano piece at 180 bpm",
    ])
    assert anchor @ paraphrase > anchor @ other + 0.2


def test_deterministic_and_batch_independent(encoder):
    texts = [f"a piece in {k} major" for k in "CDEFGAB"]
    one_by_one = np.concatenate([encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(encoder.encode(texts), one_by_one, atol=1e-5)


def test_model_is_loaded_once_per_process(encoder):
    encoder.encode(["warm up"])
    before = _load.cache_info().hits
    again = TextEncoder()
    assert again.model is encoder.model
    assert _load.cache_info().hits > before


def test_rejects_non_strings(encoder):
    with pytest.raises(TypeError):
        encoder.encode(["ok", 3])
