"""Kill anywhere: run a command in a forked child, SIGKILL it at a random moment, check what it left,
run it again to the end and compare with an uninterrupted run.

The parent imports the command's modules once and forks a child per attempt, so an attempt costs the
command's own work, not Python's start-up: the kills land inside the work (decoding, writing, the
output swap), not in the imports. The schedule is seeded: the same seed kills at the same moments.

    Scenario(name, run, outputs, equal)     run(): the command (in the child); outputs(): the folders it
                                            owns; equal(reference, now): whether a finished rerun matches
    campaign(scenario, kills, seed)         -> Figures(kills, survived, identical, half_written)
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import signal
import time
from pathlib import Path
from typing import Callable


@dataclasses.dataclass
class Scenario:
    name: str
    run: Callable[[], int]                  # the command, run in a forked child; its exit code
    outputs: Callable[[], list[Path]]       # the output folders it owns
    reset: Callable[[], None]               # back to the state before the first run (inputs only)
    complete: Callable[[Path], bool]        # a folder that is whole (e.g. has lineage.json and its manifest)
    # what 'the same result' means: by default every byte of the outputs (deterministic stages)
    state: Callable[[], str] | None = None

    def fingerprint(self) -> str:
        if self.state is not None:
            return self.state()
        return "|".join(f"{p.name}:{tree_bytes(p)}" for p in self.outputs())


@dataclasses.dataclass
class Figures:
    scenario: str
    kills: int = 0                          # attempts killed before they finished
    finished_early: int = 0                 # attempts that ended before their kill time
    survived: int = 0                       # reruns after a kill that completed
    identical: int = 0                      # ... whose outputs equal the uninterrupted run's
    half_written: list = dataclasses.field(default_factory=list)   # what a kill left incomplete
    different: list = dataclasses.field(default_factory=list)
    debris: int = 0                         # staging folders a kill left beside the outputs after the rerun


def tree_bytes(folder: Path) -> str:
    """A digest of every file's relative name and bytes (what 'identical' means for a deterministic stage)."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def forked(run: Callable[[], int]) -> int:
    """Start `run` in a forked child (its own process group); returns the pid."""
    pid = os.fork()
    if pid == 0:                           # the child: never returns into the test runner
        try:
            os.setpgid(0, 0)
            code = run()
        except BaseException:              # noqa: BLE001 - an error is an exit code here
            code = 70
        os._exit(int(code or 0))
    try:                                   # the parent too, so the group exists before the child gets to it
        os.setpgid(pid, pid)
    except OSError:                        # the child already did it (or already exec'd/exited)
        pass
    return pid


def run_to_end(run: Callable[[], int]) -> tuple[int, float]:
    start = time.monotonic()
    _, status = os.waitpid(forked(run), 0)
    return os.waitstatus_to_exitcode(status), time.monotonic() - start


def campaign(scenario: Scenario, kills: int, seed: int) -> Figures:
    rng = random.Random(seed)
    figures = Figures(scenario.name)
    scenario.reset()
    code, duration = run_to_end(scenario.run)
    assert code == 0, f"{scenario.name}: the uninterrupted run failed ({code})"
    reference = scenario.fingerprint()
    attempts = 0
    while figures.kills < kills and attempts < 3 * kills:
        attempts += 1
        scenario.reset()
        pid = forked(scenario.run)
        time.sleep(rng.uniform(0.0, duration))
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished:
            figures.finished_early += 1
            continue
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:          # it ended between the check and the kill
            pass
        os.waitpid(pid, 0)
        figures.kills += 1
        for folder in scenario.outputs():   # what the kill left: nothing, or a whole folder
            if folder.exists() and not scenario.complete(folder):
                figures.half_written.append(f"kill {figures.kills}: {folder}")
        code, _ = run_to_end(scenario.run)  # the rerun, over whatever the kill left
        if code != 0:
            continue
        figures.survived += 1
        figures.debris += sum(1 for folder in scenario.outputs() for p in folder.parent.glob(f".{folder.name}.*")
                              if p.is_dir() and not p.name.endswith(".checkpoints"))
        if scenario.fingerprint() == reference:
            figures.identical += 1
        else:
            figures.different.append(f"kill {figures.kills}")
    return figures
