"""Tampering and rot are found before anything is built on them, with a message naming the file.

    a registry artifact whose bytes changed      resolving it (lyra generate, lyra serve) fails, naming the file
    a training checkpoint truncated on disk      resuming fails, naming the file and what to do
    a model folder whose lineage.json is gone    registering it is refused
    a DVC cache object changed on disk           `lyra verify` / every materialization names the cache file and the data
    dvc.lock damaged or edited by hand           unreadable: the line; a bad md5: the field; dep hashes edited so a
                                                 stage is skipped: the output's lineage.json disagrees, named
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.registry.conftest import project  # noqa: F401 - the throwaway project fixture


def promoted_codec(project):
    from components.registry.promote import promote

    project.train_codec(seed=0, valid_mel_distance=0.9)
    reg = project.registry()
    reg.register("omnicodec")
    for stage in ("staging", "production"):
        assert promote(reg, "omnicodec", "v0.0.1", stage, "setup", actor="test").outcome == "promoted"
    return reg


def test_a_changed_registry_artifact_is_refused_by_name(project, monkeypatch, capsys):
    from components.cli import main as lyra
    from components.registry.store import ArtifactError

    reg = promoted_codec(project)
    stored = reg.resolve("omnicodec@production") / "model.safetensors"
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF                                 # one flipped byte in the weights
    stored.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"model.safetensors: contents changed since it was stored"):
        reg.resolve("omnicodec@production")
    monkeypatch.chdir(project.root)
    assert lyra(["generate", "a chorale", "--codec", "omnicodec@production", "--model", str(project.root),
                 "--out", str(project.root / "x.wav")]) == 2
    assert "contents changed since it was stored (sha256 mismatch)" in capsys.readouterr().err


def test_a_truncated_checkpoint_is_an_error_naming_it(tmp_path):
    from components.common.resume import CheckpointError, ResumeFolder

    folder = ResumeFolder(tmp_path / ".out.checkpoints", "fp")
    folder.save({"step": 10, "weights": list(range(1000))})
    data = folder.state_path.read_bytes()
    folder.state_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"state.pt: the checkpoint cannot be read .* Remove .*\.out\.checkpoints"):
        folder.load()


def test_a_model_folder_without_its_lineage_is_not_registered(project):
    from components.registry.registry import RegistryError

    folder = project.train_codec(seed=0, valid_mel_distance=0.9)
    (folder / "lineage.json").unlink()
    with pytest.raises(RegistryError, match=r"lineage.json: missing, so nothing records what omnicodec's weights"):
        project.registry().register("omnicodec")
    assert project.registry().versions("omnicodec") == []


# --- the DVC record: a two-stage pipeline in a throwaway DVC project, checked by `lyra verify` (orchestration/integrity.py)

DVC = str(Path(sys.executable).parent / "dvc")
WRITE_B = ("import json, pathlib; from components.common.lineage import tree_digest; "
           "b = pathlib.Path('b_out'); b.mkdir(exist_ok=True); "
           "(b / 'y.txt').write_text(pathlib.Path('a_out/x.txt').read_text().upper()); "
           "(b / 'lineage.json').write_text(json.dumps({'inputs': {'a': {'path': 'a_out', 'digest': tree_digest('a_out')}}}))")


@pytest.fixture(scope="module")
def dvc_template(tmp_path_factory):
    """a_in.txt -> stage a -> a_out/ -> stage b -> b_out/ (with the lineage.json every Lyra stage writes), built
    once: each test tampers with its own copy."""
    root = tmp_path_factory.mktemp("dvc") / "dvcproject"
    root.mkdir()

    run(root, "git", "init", "-q")
    run(root, DVC, "init", "-q")
    (root / "a_in.txt").write_text("first\n")
    run(root, DVC, "stage", "add", "-q", "-n", "a", "-d", "a_in.txt", "-o", "a_out",
        "mkdir -p a_out && cp a_in.txt a_out/x.txt")
    run(root, DVC, "stage", "add", "-q", "-n", "b", "-d", "a_out", "-o", "b_out", f"{sys.executable} -c \"{WRITE_B}\"")
    run(root, DVC, "repro", "-q")
    return root


@pytest.fixture
def dvc_project(dvc_template, tmp_path):
    root = tmp_path / "dvcproject"
    shutil.copytree(dvc_template, root, symlinks=True)
    return root


def run(root, *args) -> str:
    return subprocess.run(args, cwd=root, capture_output=True, text=True, check=True).stdout


def verify(root, capsys) -> tuple[int, str]:
    from components.cli import main as lyra

    code = lyra(["verify", "--repo", str(root)])
    out = capsys.readouterr()
    return code, (out.err.strip().splitlines() or [""])[-1] + out.out


def test_an_intact_dvc_record_verifies(dvc_project, capsys):
    code, message = verify(dvc_project, capsys)
    assert code == 0, message
    assert "5 cached objects hash to their names; 1 inputs of up-to-date stages match" in message, message


@pytest.mark.parametrize("asker", ["lyra verify", "a Dagster run's first dvc status"])
def test_a_changed_dvc_cache_object_is_found_before_dvc_drops_it_or_it_is_checked_out(dvc_project, capsys, asker):
    import yaml

    from orchestration.dvc import DvcResource
    from orchestration.integrity import IntegrityError

    lock = yaml.safe_load((dvc_project / "dvc.lock").read_text())
    listing = next(o["md5"] for o in lock["stages"]["a"]["outs"])
    cache = dvc_project / ".dvc" / "cache" / "files" / "md5"
    objects = [p for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".dir")
               and p.read_text() == "first\n"]                    # the cached copy of a_out/x.txt
    assert len(objects) == 1 and listing.endswith(".dir")
    objects[0].write_text("tampered\n")                            # as root: through the read-only mode
    if asker == "lyra verify":
        code, message = verify(dvc_project, capsys)
        assert code == 2
    else:
        with pytest.raises(IntegrityError) as caught:
            DvcResource(repo=str(dvc_project)).is_up_to_date("b", run_id="run-1")
        message = str(caught.value)
    assert f"{objects[0]}: the DVC cache's copy of a_out/x.txt (stage a) no longer matches its md5" in message, message


@pytest.mark.parametrize("edit, expected", [
    (lambda text: text.replace("outs:", "outs: [", 1), r"dvc.lock: not readable YAML at line \d+"),
    (lambda text: re.sub(r"md5: [0-9a-f]{32}", "md5: 12345", text, count=1), r"md5 '?12345'? is not an md5"),
])
def test_a_damaged_dvc_lock_is_named_with_its_line_or_field(dvc_project, capsys, edit, expected):
    lock = dvc_project / "dvc.lock"
    lock.write_text(edit(lock.read_text()))
    code, message = verify(dvc_project, capsys)
    assert code == 2 and re.search(expected, message), message


def test_a_dvc_lock_edited_to_skip_a_stage_is_caught_by_the_outputs_lineage(dvc_project, capsys):
    import yaml

    (dvc_project / "a_in.txt").write_text("second\n")
    run(dvc_project, DVC, "repro", "-q", "-s", "a")                   # a's output changes; b is now out of date ...
    lock_file = dvc_project / "dvc.lock"
    lock = yaml.safe_load(lock_file.read_text())
    new_a = lock["stages"]["a"]["outs"][0]["md5"]
    old_a = lock["stages"]["b"]["deps"][0]["md5"]
    lock_file.write_text(lock_file.read_text().replace(old_a, new_a))  # ... until the lock is edited to say it is not
    assert run(dvc_project, DVC, "status", "b").strip().endswith("up to date.")   # DVC believes the edit
    code, message = verify(dvc_project, capsys)
    assert code == 2
    assert "records b as up to date with a_out, but" in message and "b_out/lineage.json says b_out was made" in message
    assert "edited by hand" in message, message
