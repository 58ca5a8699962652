"""One resume folder for every trainer: the same fingerprint finds its state, another sets it aside."""

import json

import pytest

from components.common.resume import ResumeFolder, checkpoint_folder, fingerprint
from components.common.schedules import ramped_cosine, warmup_cosine
from components.common.metrics import pick


def test_the_same_fingerprint_resumes_and_another_sets_the_state_aside(tmp_path):
    root = checkpoint_folder(tmp_path / "model")
    assert root == tmp_path / ".model.checkpoints"
    first = ResumeFolder(root, "aaa")
    first.save({"step": 4})
    (root / "step_000004.pt").write_bytes(b"x")
    assert ResumeFolder(root, "aaa").load() == {"step": 4}          # a rerun of the same command

    other = ResumeFolder(root, "bbb")                               # config, code or inputs changed
    assert other.load() is None and not (root / "step_000004.pt").exists()
    assert sorted(p.name for p in (root / "stale-aaa").iterdir()) == ["state.pt", "step_000004.pt"]
    assert json.loads((root / "run.json").read_text()) == {"fingerprint": "bbb"}
    other.save({"step": 1})
    ResumeFolder(root, "ccc")                                       # only the newest stale set is kept
    assert [p.name for p in root.glob("stale-*")] == ["stale-bbb"]
    other.remove()
    assert not root.exists()


def test_a_folder_without_a_marker_is_not_resumed(tmp_path):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "state.pt").write_bytes(b"from an older layout")
    assert ResumeFolder(tmp_path / "ckpt", "new").load() is None
    assert (tmp_path / "ckpt" / "stale-unknown" / "state.pt").is_file()


def test_the_fingerprint_follows_config_inputs_and_extra_facts(tmp_path):
    data = tmp_path / "index.parquet"
    data.write_bytes(b"1")
    base = fingerprint('{"lr": 1}', "lyra_pretrain", [data])
    assert base == fingerprint('{"lr": 1}', "lyra_pretrain", [data])
    assert base != fingerprint('{"lr": 2}', "lyra_pretrain", [data])
    assert base != fingerprint('{"lr": 1}', "lyra_pretrain", [data], extra=["world=2"])
    data.write_bytes(b"2")
    assert base != fingerprint('{"lr": 1}', "lyra_pretrain", [data])
    assert fingerprint('{"lr": 1}', "lyra_pretrain", [tmp_path / "absent"]) == fingerprint('{"lr": 1}', "lyra_pretrain", [None])


def test_warmup_cosine_warms_up_then_decays_to_its_floor():
    lr = [warmup_cosine(s, 1.0, 10, 110, floor=0.1) for s in range(130)]
    assert lr[0] == pytest.approx(0.1) and lr[9] == pytest.approx(1.0)
    assert lr[10] == pytest.approx(1.0) and lr[60] == pytest.approx(0.55)
    assert lr[110] == pytest.approx(0.1) and lr[129] == pytest.approx(0.1)      # held at the floor after
    assert all(a >= b for a, b in zip(lr[10:], lr[11:]))


def test_ramped_cosine_overlaps_its_ramp_and_decay():
    assert ramped_cosine(0, 1.0, 20, 100) == pytest.approx(1 / 20)
    assert ramped_cosine(19, 1.0, 20, 100) == pytest.approx(0.5 * (1 + __import__("math").cos(__import__("math").pi * 0.19)))
    assert ramped_cosine(100, 1.0, 20, 100) == pytest.approx(0.0)


def test_pick_reads_a_table_of_paths_and_names_a_missing_one():
    report = {"test": {"spearman": {"value": 0.8, "ci95": [0.7, 0.9]}}}
    assert pick(report, {"s": "test.spearman.value", "s_ci95": "test.spearman.ci95"}) == {"s": 0.8, "s_ci95": [0.7, 0.9]}
    with pytest.raises(KeyError, match="test.pairwise.value"):
        pick(report, {"p": "test.pairwise.value"})
