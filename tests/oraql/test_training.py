"""ORAQL learns (held-out Spearman far above an untrained model's) and resumes to the same state."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from components.oraql import degrade
from components.oraql.config import OraqlConfig, OraqlModelConfig
from components.oraql.model import HEADS, Oraql, load_oraql, log_mel_features
from components.common.resume import ResumeFolder
from components.oraql.train import Killed, LabelledSet, fit, predict
from tests.oraql.synth import melody

SR = 16_000
SMALL = OraqlModelConfig(channels=[16, 32, 32], head_hidden=32)


def noisy_set(seeds, seconds=2.0) -> tuple[LabelledSet, np.ndarray]:
    """Melodies with noise (label rises with the SNR) or a low-pass (label rises with the cut-off): more
    high-frequency energy is better for one and worse for the other, so no fixed projection ranks both."""
    rng = np.random.default_rng(seeds[0])
    audio, labels = [], []
    for i, seed in enumerate(seeds):
        clean = melody(seed, seconds, sr=SR)
        q = rng.uniform(0, 1)
        if i % 2:
            audio.append(degrade.noise(clean, 0, len(clean), -5 + 45 * q, rng, SR))
        else:
            audio.append(degrade.band_limit(clean, 0, len(clean), 300 * (7000 / 300) ** q, rng, SR))
        labels.append(q)
    feats = log_mel_features(torch.from_numpy(np.stack(audio)), SMALL).numpy().astype(np.float16)
    y = np.repeat(np.array(labels, dtype=np.float32)[:, None], len(HEADS), axis=1)
    y[::3, 2] = np.nan                                     # unknown sub-scores are masked, not guessed
    return LabelledSet(feats, y), np.array(labels)


@pytest.fixture(scope="module")
def data():
    return noisy_set(list(range(64))), noisy_set(list(range(100, 116))), noisy_set(list(range(200, 232)))


def config(**kw):
    return OraqlConfig(model=SMALL, steps=120, batch_size=16, eval_every=40, checkpoint_every=40, lr=3e-3, **kw)


def test_trained_model_ranks_held_out_clips_far_better_than_untrained(data):
    (train, _), (valid, _), (test, y) = data
    cfg = config()
    model, history = fit(train, valid, cfg)
    trained = spearmanr(predict(model, test.features)[:, 0], y)[0]
    torch.manual_seed(0)
    untrained = spearmanr(predict(Oraql(SMALL), test.features)[:, 0], y)[0]
    assert trained > 0.85 and trained > untrained + 0.3, (trained, untrained)
    losses = [l for _, l in history["train"]]
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    assert history["best"]["step"] in [s for s, _ in history["valid"]]


def test_a_killed_run_resumes_to_the_same_final_state(data, tmp_path):
    (train, _), (valid, _), _ = data
    cfg = config()
    reference, ref_history = fit(train, valid, cfg)
    ckpt = ResumeFolder(tmp_path / "ckpt", "fingerprint")
    with pytest.raises(Killed):
        fit(train, valid, cfg, ckpt, stop_after=80)
    assert ckpt.load()["step"] == 80
    resumed, history = fit(train, valid, cfg, ckpt)
    assert ref_history.pop("resumed_from_step") is None and history.pop("resumed_from_step") == 80
    assert history == ref_history
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert ResumeFolder(tmp_path / "ckpt", "other inputs").load() is None     # never resumed across inputs


def test_save_and_load_round_trip(tmp_path, data):
    (train, _), _, (test, _) = data
    torch.manual_seed(0)
    model = Oraql(SMALL).eval()
    model.save_pretrained(tmp_path / "m")
    again = load_oraql(tmp_path / "m")
    assert np.allclose(predict(model, test.features), predict(again, test.features))
    with pytest.raises(FileNotFoundError, match="no ORAQL model"):
        load_oraql(tmp_path / "nothing")
