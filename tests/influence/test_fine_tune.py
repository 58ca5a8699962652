"""LoRA fine-tuning: only the adapter and the conditioner change; the reference is learnt; a killed run resumes."""

import dataclasses
import logging

import numpy as np
import pytest
import torch

from components.influence.pairs import Recording, pair_batch
from components.common.resume import ResumeFolder, checkpoint_folder
from components.influence.train import attach_reference, fine_tune, trainable_state
from tests.influence.conftest import FRAME_RATE, K, V, influence_config, synthetic_recordings, tiny_lyra

LOG = logging.getLogger("test")


def test_only_lora_and_conditioner_weights_change(tiny_codec):
    model = tiny_lyra()
    cfg = influence_config(steps=6)
    attach_reference(model, cfg, tiny_codec)
    before = {n: t.detach().clone() for n, t in model.state_dict().items()}
    recs = synthetic_recordings()
    peft_model, history = fine_tune(model, recs, recs[:3], cfg, None, LOG)
    after = dict(peft_model.base_model.model.state_dict())
    changed = {n for n, t in after.items() if "lora_" not in n and not torch.equal(before[_base_weight_name_inv(n)], t)}
    assert changed, "nothing trained"
    assert all(n.startswith("condition.reference.") for n in changed), sorted(changed)[:5]
    lora = [n for n, p in peft_model.named_parameters() if "lora_B" in n]
    assert lora and all(float(dict(peft_model.named_parameters())[n].abs().sum()) > 0 for n in lora)   # B starts at 0
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "condition.reference." in n for n in trainable)
    assert len(history["loss"]) == 6


def _base_weight_name_inv(name: str) -> str:
    return name.replace(".base_layer.", ".")


def test_the_conditioner_learns_what_the_reference_says(tiny_codec):
    """Each recording draws its codes from its own style's 5 of 16 codes and the text is empty: a base
    model (pretrained here without references) can only guess a window's style from the window itself;
    the reference, another segment of the same recording, tells it from the first frame."""
    recs = style_recordings(18)
    model = pretrained_base(recs[:15])
    cfg = influence_config(steps=150, lr=1e-2, text_dropout=1.0, reference_dropout=0.1, checkpoint_every=0)
    attach_reference(model, cfg, tiny_codec)
    _, history = fine_tune(model, recs[:15], recs[15:], cfg, None, LOG)
    assert history["gain_before"]["gain"] == pytest.approx(0.0, abs=1e-6)      # zero-initialised outputs
    assert history["gain_after"]["gain"] > 0.02, history["gain_after"]         # held-out recordings (measured: 0.045)


def style_recordings(n: int, frames: int = 60) -> list[Recording]:
    g = np.random.default_rng(0)
    out = []
    for i in range(n):
        style = i % 3
        codes = g.choice(np.arange(5 * style, 5 * style + 5), size=(K, frames)).astype(np.int64)
        out.append(Recording(f"r{i}", f"p{i}", "train", codes, np.zeros(384, np.float32), "", frames / FRAME_RATE,
                             None, [0.0], [f"r{i}-000"]))
    return out


def pretrained_base(recs: list[Recording], steps: int = 150):
    """The tiny Lyra trained in full (no reference yet) on the recordings' windows."""
    model = tiny_lyra()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(steps):
        b = pair_batch(recs, step, 16, reference_frames=20, window_frames=16, frame_rate=FRAME_RATE, special=V + 1,
                       text_dropout=1.0, reference_dropout=0.0, seed=5)
        loss = model(codes=b.inputs, conditions=dataclasses.replace(b.conditions, reference=None), labels=b.labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def test_a_killed_run_resumes_where_it_stopped(tiny_codec, tmp_path):
    recs = synthetic_recordings()
    cfg = influence_config(steps=8, checkpoint_every=4)

    def run(stop_after=None, folder="a"):
        model = tiny_lyra()
        attach_reference(model, cfg, tiny_codec)
        ckpts = ResumeFolder(checkpoint_folder(tmp_path / folder / "out"), "fingerprint")
        return fine_tune(model, recs, recs[:2], cfg, ckpts, LOG, stop_after=stop_after), ckpts

    (_, _), ckpts = run(stop_after=6)                # "killed" after step 6: the step-4 checkpoint is on disk
    assert ckpts.load()["step"] == 4
    (resumed, history), _ = run()
    (straight, straight_history), _ = run(folder="b")
    assert history["resumed_from_step"] == 4 and straight_history["resumed_from_step"] is None
    assert history["step"] == list(range(1, 9))
    assert history["loss"] == pytest.approx(straight_history["loss"], rel=1e-4, abs=1e-5)
    a, b = trainable_state(resumed), trainable_state(straight)
    assert all(torch.allclose(a[n], b[n], atol=1e-5) for n in a)
    other = ResumeFolder(checkpoint_folder(tmp_path / "a" / "out"), "another config")
    assert other.load() is None and (other.root / "stale-fingerprint" / "state.pt").is_file()   # set aside, not resumed
