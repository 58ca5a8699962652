import json
import os
import stat

import pytest

from components.common.atomic import atomic_dir, atomic_write_json


def test_atomic_write_json_replaces_whole_file(tmp_path):
    target = tmp_path / "m.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"b": 2})
    assert json.loads(target.read_text()) == {"b": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_failed_write_keeps_previous_version(tmp_path):
    target = tmp_path / "m.json"
    atomic_write_json(target, {"ok": True})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"ok": True}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_atomic_dir_crash_leaves_old_folder_untouched(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as staging:
        (staging / "a.txt").write_text("v1")
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as staging:
            (staging / "a.txt").write_text("half-written v2")
            raise RuntimeError("crash mid-stage")
    assert (out / "a.txt").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_dir_replaces_folder_and_recovers_interrupted_swap(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as staging:
        (staging / "old.txt").write_text("v1")
    # simulate a crash between "move old aside" and "move new in"
    (tmp_path / ".out.old").mkdir()
    out.rename(tmp_path / ".out.old2")
    (tmp_path / ".out.old").rmdir()
    (tmp_path / ".out.old2").rename(tmp_path / ".out.old")
    with atomic_dir(out) as staging:
        assert (out / "old.txt").read_text() == "v1"  # restored before the new write starts
        (staging / "new.txt").write_text("v2")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_finished_artifacts_get_the_umask_mode_not_the_private_staging_mode(tmp_path):
    old_mask = os.umask(0o027)
    try:
        atomic_write_json(tmp_path / "m.json", {"a": 1})
        with atomic_dir(tmp_path / "model") as staging:
            (staging / "w.bin").write_bytes(b"x")
    finally:
        os.umask(old_mask)
    assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o750
