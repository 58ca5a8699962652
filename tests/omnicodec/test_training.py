import json

import pytest
import torch
from safetensors.torch import load_file

from components.common.reporting import StageRun
from components.omnicodec.checkpoint import list_checkpoints
from components.omnicodec.train import default_work_dir, run_training
from tests.omnicodec.conftest import small_train_config


def _run(cfg, curated, out, **kw):
    return run_training(cfg, curated, out, StageRun("omnicodec-test", None), **kw)


@pytest.mark.slow
def test_short_training_reduces_reconstruction_loss(curated, tmp_path):
    cfg = small_train_config(steps=60, checkpoint_every=30, valid_every=20, log_every=2, adv_start_step=45, lr=3e-3)
    result = _run(cfg, curated, tmp_path / "model")
    assert result.finished
    m = result.metrics
    assert m["valid_mel_distance"] < 0.8 * m["valid_mel_distance_initial"]
    history = torch.load(tmp_path / "model" / "checkpoints" / "last.pt", weights_only=False)["history"]
    mels = [h["mel"] for h in history if "mel" in h]
    assert sum(mels[-3:]) / 3 < 0.85 * sum(mels[:3]) / 3  # the training loss fell too
    assert any("adv" in h for h in history)                # the adversarial part switched on at step 45
    for name in ("model.safetensors", "config.json", "lineage.json", "loss_curve.png", "spectrograms.png",
                 "examples/0_input.wav", "examples/0_reconstruction.wav", "checkpoints/last.pt"):
        assert (tmp_path / "model" / name).is_file(), name
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["init_seed"] == 0 and config["trained_steps"] == 60
    assert not default_work_dir(tmp_path / "model").exists()  # scratch checkpoints are cleaned up


def test_resume_after_a_stop_equals_an_uninterrupted_run(curated, tmp_path):
    # 8 steps: dead-code replacement at 3 and 6, adversarial from step 4, checkpoints at 4 and 8
    cfg = small_train_config()
    assert _run(cfg, curated, tmp_path / "straight").finished

    stopped = _run(cfg, curated, tmp_path / "resumed", stop_after=4)  # as if killed after step 4's checkpoint
    assert not stopped.finished and not (tmp_path / "resumed").exists()
    assert stopped.resumed_from_step is None
    work = default_work_dir(tmp_path / "resumed")
    assert [s for s, _ in list_checkpoints(work)] == [4]
    again = _run(cfg, curated, tmp_path / "resumed")                  # the same command again picks up at step 4
    assert again.finished and again.resumed_from_step == 4

    straight = load_file(tmp_path / "straight" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "model.safetensors")
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    a = torch.load(tmp_path / "straight" / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "resumed" / "checkpoints" / "last.pt", weights_only=False)
    for key in a["disc"]:
        assert torch.equal(a["disc"][key], b["disc"][key]), key
    assert [h for h in a["history"]] == [h for h in b["history"]]
    assert a["opt_g"]["state"][0]["step"] == b["opt_g"]["state"][0]["step"] == 8


def _assert_set_aside_then_started_afresh(curated, out, changed_cfg):
    """A run whose config or code differs from the checkpoints' moves them to stale-<digest> and starts at step 0."""
    work = default_work_dir(out)
    changed = _run(changed_cfg, curated, out, stop_after=2)          # stop early to look at the work folder
    assert not changed.finished and changed.resumed_from_step is None
    [stale] = work.glob("stale-*")
    assert [s for s, _ in list_checkpoints(work)] == [2]                # its own checkpoints only
    assert [int(p.stem.split("_")[-1]) for p in stale.glob("step_*.pt")] == [4]   # the other run's, set aside intact
    finished = _run(changed_cfg, curated, out)
    assert finished.finished and finished.resumed_from_step == 2       # and it resumes its own
    history = torch.load(out / "checkpoints" / "last.pt", weights_only=False)["history"]
    assert history[0]["step"] == 0


def test_changed_config_does_not_resume_stale_checkpoints(curated, tmp_path):
    _run(small_train_config(), curated, tmp_path / "m", stop_after=4)
    _assert_set_aside_then_started_afresh(curated, tmp_path / "m", small_train_config(lr=5e-4, steps=4))


def test_changed_code_does_not_resume_stale_checkpoints(curated, tmp_path, monkeypatch):
    from components.common import resume

    _run(small_train_config(), curated, tmp_path / "m", stop_after=4)
    monkeypatch.setattr(resume, "stage_code_version", lambda stage: "edited-source")   # as if a file changed
    _assert_set_aside_then_started_afresh(curated, tmp_path / "m", small_train_config(steps=4))
