"""Two of a kind at once: the loser is refused at once and told who holds it; nothing interleaves.

    two `lyra demo` in one checkout          the second exits 2 naming the first's pid and command
    two trainings of one output              the second is refused (the resume folder's lock)
    a killed holder                          leaves no lock behind
    two processes promoting and registering  every decision and audit line recorded, none lost
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.common.holder import LockHeld, acquire, describe_holder

REPO = Path(__file__).resolve().parents[2]

HOLD = """
import sys, time
sys.path.insert(0, {repo!r})
from components.common.holder import acquire
acquire({path!r}, "test")
print("held", flush=True)
time.sleep(120)
"""


def hold(path: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD.format(repo=str(REPO), path=str(path))], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_the_loser_is_told_who_holds_it_and_a_killed_holder_leaves_no_lock(tmp_path):
    lock = tmp_path / "x.lock"
    holder = hold(lock)
    try:
        with pytest.raises(LockHeld) as held:
            acquire(lock, "the thing")
        assert f"the thing is held by pid {holder.pid}" in str(held.value) and "-c" in describe_holder(lock)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    acquire(lock, "the thing")                         # the OS dropped the dead holder's lock


def test_a_second_lyra_demo_in_one_checkout_is_refused_naming_the_first(tmp_path, monkeypatch, capsys):
    from components.cli import main as lyra

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)                        # lyra demo moves to the checkout; the fixture moves back
    holder = hold(tmp_path / "lyra-demo.lock")
    try:
        started = time.monotonic()
        assert lyra(["demo"]) == 2
        assert time.monotonic() - started < 30         # refused at once, not after waiting
        err = capsys.readouterr().err
        assert "(lyra demo) is held by pid" in err and str(holder.pid) in err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_a_second_training_of_one_output_is_refused(tmp_path):
    from components.common.resume import ResumeFolder, checkpoint_folder

    root = checkpoint_folder(tmp_path / "models" / "lyra")
    holder = hold(root.with_name(root.name + ".lock"))
    try:
        with pytest.raises(LockHeld, match=r"the training of .*models/lyra is held by pid"):
            ResumeFolder(root, "abc")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    ResumeFolder(root, "abc")
    ResumeFolder(root, "abc")                          # the same process may open it again (a resumed run)


PROMOTE = """
import sys
sys.path.insert(0, {repo!r})
from components.registry.registry import Registry
from components.registry.promote import promote
reg = Registry({root!r})
for i in range({n}):
    reg.append_audit({{"event": "note", "writer": {who!r}, "i": i}})
print(promote(reg, "omnicodec", "v0.0.1", "staging", "from " + {who!r}, actor={who!r}).outcome)
"""


def test_concurrent_promotions_and_audit_writers_lose_nothing(project):
    """Four processes at once, each appending 25 audit lines and promoting the same version: the registry's
    lock queues them, so every line is there, exactly one promotes and the others find it held."""
    project.train_codec(seed=0, valid_mel_distance=0.9)
    project.registry().register("omnicodec")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", PROMOTE.format(repo=str(REPO), root=str(project.root), n=25,
                                                                      who=f"w{k}")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for k in range(4)]
    outcomes = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        outcomes.append(out.strip().splitlines()[-1])
    lines = [json.loads(x) for x in (project.root / "registry" / "audit.jsonl").read_text().splitlines()]
    notes = [x for x in lines if x.get("event") == "note"]
    assert len(notes) == 100 and {(x["writer"], x["i"]) for x in notes} == {(f"w{k}", i) for k in range(4) for i in range(25)}
    assert outcomes.count("promoted") >= 1 and project.registry().holder("omnicodec", "staging") == "v0.0.1"
    assert sum(1 for x in lines if x.get("event") == "promotion") == 4      # every decision recorded


from tests.registry.conftest import project  # noqa: E402,F401 - the throwaway project fixture
