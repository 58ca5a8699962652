"""Tampering and rot are found before anything is built on them, with a message naming the file.

    a registry artifact whose bytes changed      resolving it (lyra generate, lyra serve) fails, naming the file
    a training checkpoint truncated on disk      resuming fails, naming the file and what to do
    a model folder whose lineage.json is gone    registering it is refused
"""

from __future__ import annotations

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
