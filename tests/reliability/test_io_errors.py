"""Writes that fail part-way, on a full disk (a tmpfs) or a failing device (EIO from an LD_PRELOAD library,
tests/reliability/eio.c): one line naming the path, nothing corrupted or half-written, and the rerun after the
fault is gone completes. Stages, the registry's artifact store and its audit log alike."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.registry.conftest import project  # noqa: F401 - the throwaway project fixture
from tests.reliability.conftest import fill, mount_small_disk
from tests.reliability.test_disk_full import audio_folder, curate

LYRA = str(Path(sys.executable).parent / "lyra")


def listing(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def staging_left(folder: Path) -> list[str]:
    """What atomic writers leave while writing (".<name>.<random>" folders, ".tmp" files): nothing, after a failure.
    (Curation's `.curated.stamps.json` beside its output is a cache of file times, not staging.)"""
    return [p.name for p in folder.rglob(".*") if ".tmp" in p.name
            or (p.is_dir() and p.name.count(".") >= 2 and not p.name.endswith(".checkpoints"))]


def test_curation_on_a_failing_device_names_the_path_and_the_rerun_completes(tmp_path, failing_device):
    data = tmp_path / "data"
    out = data / "curated"
    first = curate(audio_folder(tmp_path / "few", 1, seed=0), out)
    assert first.returncode == 0, first.stderr[-2000:]
    before = listing(out)

    many = audio_folder(tmp_path / "many", 4, seed=1)
    broken = subprocess.run([LYRA, "curate", "--input", str(many), "--out", str(out)], capture_output=True, text=True,
                            env=failing_device(data, after_bytes=400_000))
    assert broken.returncode == 2, broken.stderr[-2000:]
    message = broken.stderr.strip().splitlines()[-1]
    assert "Input/output error while writing" in message and str(data) in message, message
    assert "Traceback" not in broken.stderr
    assert listing(out) == before                              # the previous output, byte for byte
    assert staging_left(data) == []

    again = curate(many, out)                                  # the device is back: the rerun completes
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(listing(out)) > len(before)


def other_models_audit(lines: int) -> str:
    return "".join(json.dumps({"event": "promoted", "model": "other", "version": f"v0.0.{i}", "actor": "earlier",
                               "at": "2026-01-01T00:00:00+00:00", "stage": "staging"}, sort_keys=True) + "\n"
                   for i in range(lines))


@pytest.mark.parametrize("fault", ["disk full", "EIO"])
@pytest.mark.parametrize("where", ["artifact store", "audit log"])
def test_a_registration_that_cannot_write_changes_nothing_and_completes_after(project, where, fault, failing_device,
                                                                            monkeypatch, capsys, request):
    from components.cli import main as lyra
    from components.registry.store import Artifact

    root = project.root
    project.train_codec(seed=0, valid_mel_distance=0.9)
    audit = root / "registry" / "audit.jsonl"
    audit.parent.mkdir(parents=True)
    audit.write_text(other_models_audit(3000))                 # ~0.4 MB: rewriting it needs that much room again
    target = root / "data" / "registry" if where == "artifact store" else root / "registry"
    audit_before = audit.read_bytes()

    if fault == "disk full":
        mount_small_disk(target, "2m")
        request.addfinalizer(lambda: subprocess.run(["umount", "-l", str(target)], check=False))
        # the store: less room than the weights; the log: room for the entry, not for the log's rewrite
        ballast = fill(target, 50_000 if where == "artifact store" else 200_000)
        monkeypatch.chdir(root)
        code = lyra(["registry", "register", "omnicodec", "--actor", "test"])
        message = capsys.readouterr().err.strip().splitlines()[-1]
    else:
        # the store: fails half-way through the weights; the log: after the entry, inside the log's rewrite
        weights = (root / "data" / "models" / "omnicodec" / "model.safetensors").stat().st_size
        broken = subprocess.run([LYRA, "registry", "register", "omnicodec", "--actor", "test"], cwd=root,
                                capture_output=True, text=True,
                                env=failing_device(target, weights // 2 if where == "artifact store" else 100_000))
        code, message = broken.returncode, broken.stderr.strip().splitlines()[-1]
        assert "Traceback" not in broken.stderr
    assert code == 2, message
    assert ("No space left on device" if fault == "disk full" else "Input/output error") in message, message
    assert f"while writing {target}" in message, message
    if where == "audit log":                                    # the entry was written; the log's rewrite failed
        assert f"while writing {audit}" in message, message
    assert audit.read_bytes() == audit_before                   # not a line lost, not half a line added
    assert staging_left(target) == []
    if where == "artifact store":                               # nothing registered on a store without the weights
        assert project.registry().versions("omnicodec") == []
        assert not any((target / "artifacts").glob("*")) if (target / "artifacts").is_dir() else True

    if fault == "disk full":                                    # space freed
        ballast.unlink()
        subprocess.run(["mount", "-o", "remount,size=64m", str(target)], check=True)
    monkeypatch.chdir(root)
    assert lyra(["registry", "register", "omnicodec", "--actor", "test"]) == 0
    reg = project.registry()
    assert reg.versions("omnicodec") == ["v0.0.1"]
    entry = json.loads((root / "registry" / "omnicodec" / "v0.0.1.json").read_text())
    reg.store.verify(Artifact(entry["artifact"]["digest"], entry["artifact"]["files"]))
    lines = audit.read_bytes()
    assert lines.startswith(audit_before)
    added = [json.loads(line) for line in lines[len(audit_before):].decode().splitlines()]
    assert [(a["event"], a["model"], a["version"]) for a in added] == [("registered", "omnicodec", "v0.0.1")]
