"""Before a stage builds on its inputs (or is skipped as up to date), check that the record and the data agree.

DVC trusts dvc.lock and its cache: a cache object changed on disk is checked out and pushed as it is, and a
dvc.lock edited by hand is believed (`dvc status` compares the workspace with whatever the lock says). Three
checks catch what DVC does not, each with a message naming the file and what to do:

    check_lock(repo)                  dvc.lock is readable YAML of DVC's shape (stage -> cmd, deps, outs)
    check_cache(repo, lock, paths)    every cached object of these data paths still hashes to its name
                                      (dvc_data's hashing check, which also drops the bad copy from the cache)
    check_lineage(repo, lock, stage)  a stage that dvc.lock calls up to date: its outputs' lineage.json
                                      (components/common/lineage.py, written by the stage itself) names the
                                      same input digests as the inputs there now. A lock whose dep hashes
                                      were edited to match new inputs, without the stage rerunning, fails here.

What they cannot see: DVC's state database remembers a verified cache object by inode, size and mtime, so a
change that keeps all three (a same-size edit with the mtime put back) is not rehashed; and a dvc.lock edited
consistently with outputs whose lineage.json was forged too.

`lyra verify` (orchestration/verify.py) runs all three over the pipeline. In a Dagster run, the first
`dvc status` of the run is preceded by check_lock and check_cache over everything dvc.lock records
(orchestration/dvc.py), and a stage about to be skipped as up to date runs check_lineage
(orchestration/stage_assets.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from components.common.errors import LyraError

REPO_ROOT = Path(__file__).resolve().parents[1]
RESTORE = "`git checkout dvc.lock` restores the committed record"


class IntegrityError(LyraError, RuntimeError):
    """dvc.lock, the DVC cache or an output's lineage disagrees with the data: nothing is built on it."""


def check_lock(repo: str | os.PathLike = REPO_ROOT) -> dict:
    """dvc.lock parsed ({} when there is none yet), or IntegrityError naming the line or the stage and field."""
    path = Path(repo) / "dvc.lock"
    if not path.is_file():
        return {}
    try:
        lock = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise IntegrityError(f"{path}: not readable YAML{where} ({getattr(exc, 'problem', None) or exc}): it was "
                             f"edited by hand or damaged; {RESTORE}") from None
    if not isinstance(lock, dict) or not isinstance(lock.get("stages"), dict):
        raise IntegrityError(f"{path}: has no `stages:` mapping, so it is not a DVC lock file; {RESTORE}")
    for name, entry in lock["stages"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("cmd"), (str, list)):
            raise IntegrityError(f"{path}: stage {name!r} has no command (`cmd`); {RESTORE}")
        for field in ("deps", "outs"):
            for i, item in enumerate(entry.get(field) or []):
                if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                    raise IntegrityError(f"{path}: stage {name!r}, {field}[{i}] has no `path`; {RESTORE}")
                digest = item.get("md5")
                if digest is not None and not _is_md5(digest):
                    raise IntegrityError(f"{path}: stage {name!r}, {field} {item['path']}: md5 {digest!r} is not an "
                                         f"md5 (32 hex digits, '.dir' for a folder); {RESTORE}")
    return lock


def _is_md5(value) -> bool:
    text = str(value).removesuffix(".dir")
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


def recorded_outs(lock: dict) -> dict[str, tuple[str, str]]:
    """{data path: (stage that wrote it, md5)} for every output dvc.lock records."""
    return {o["path"]: (stage, o["md5"]) for stage, entry in (lock.get("stages") or {}).items()
            for o in entry.get("outs") or [] if o.get("md5")}


def check_cache(repo: str | os.PathLike, lock: dict, paths) -> int:
    """Hash every object the DVC cache holds for these recorded outputs (a folder: its listing and each file);
    returns how many were checked. Objects the cache does not hold are DVC's business (`dvc status`, `dvc pull`).
    DVC's state database remembers verified objects by inode, size and mtime, so a recheck costs a stat."""
    from dvc.repo import Repo
    from dvc_data.hashfile.db import HashFileDB
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.tree import Tree
    from dvc_objects.errors import ObjectFormatError

    outs = recorded_outs(lock)
    wanted = [(p, *outs[p]) for p in dict.fromkeys(paths) if p in outs]
    if not wanted:
        return 0
    checked = 0
    with Repo(os.fspath(repo)) as dvc:
        odb = dvc.cache.local

        def check(oid: str, data_path: str, stage: str) -> None:
            nonlocal checked
            if not odb.exists(oid):
                return
            try:
                # the hashing check itself: the local store's own check trusts any read-only file, and root (or
                # a chmod) writes through read-only. Unchanged objects cost a stat (DVC's state database)
                HashFileDB.check(odb, oid)
            except ObjectFormatError:
                raise IntegrityError(
                    f"{odb.oid_to_path(oid)}: the DVC cache's copy of {data_path} (stage {stage}) no longer matches "
                    f"its md5 {oid.removesuffix('.dir')}: it changed on disk after it was cached. DVC has dropped the "
                    f"bad copy; if {data_path} in the workspace is right, `dvc commit {stage}` caches it again, "
                    f"otherwise `dvc pull` it or rerun the stage") from None
            checked += 1

        for data_path, stage, oid in wanted:
            check(oid, data_path, stage)
            if oid.endswith(".dir") and odb.exists(oid):
                for key, _, hash_info in Tree.load(odb, HashInfo("md5", oid)):
                    check(hash_info.value, "/".join((data_path, *key)), stage)
    return checked


def check_lineage(repo: str | os.PathLike, lock: dict, stage: str) -> int:
    """For a stage dvc.lock calls up to date: each output's lineage.json must name the digests of the inputs
    now in the workspace (for the inputs that are the stage's DVC deps); returns how many inputs were compared."""
    from components.common.lineage import tree_digest

    repo = Path(repo).resolve()
    entry = (lock.get("stages") or {}).get(stage) or {}
    deps = {d["path"] for d in entry.get("deps") or []}
    compared = 0
    for out in entry.get("outs") or []:
        lineage_file = repo / out["path"] / "lineage.json"
        if not lineage_file.is_file():
            continue
        try:
            inputs = json.loads(lineage_file.read_text()).get("inputs") or {}
        except (OSError, ValueError, AttributeError) as exc:
            raise IntegrityError(f"{lineage_file}: unreadable ({exc}); rerun {stage} (dvc repro -f {stage})") from None
        for recorded in inputs.values():
            path = Path(recorded.get("path", ""))
            if path.is_absolute():
                if not path.is_relative_to(repo):
                    continue                         # made on another machine (a pod's workspace): not comparable
                path = path.relative_to(repo)
            if path.as_posix() not in deps or not (repo / path).exists():
                continue
            now = tree_digest(repo / path)
            compared += 1
            if now != recorded.get("digest"):
                raise IntegrityError(
                    f"{repo / 'dvc.lock'}: records {stage} as up to date with {path}, but {lineage_file} says "
                    f"{out['path']} was made from another {path} (digest {recorded.get('digest')}, now {now}): "
                    f"dvc.lock was edited by hand or committed without rerunning {stage}. Rerun it "
                    f"(`dvc repro -f {stage}`, or materialize it with force) before building on {out['path']}")
    return compared


def verify_record(repo: str | os.PathLike = REPO_ROOT) -> tuple[dict, int]:
    """dvc.lock readable and every cached object it records intact: run before DVC is asked anything, since
    `dvc status` itself drops a corrupt cache object without a word (and the next checkout has no copy).
    Returns (the lock, how many cached objects were checked)."""
    lock = check_lock(repo)
    return lock, check_cache(repo, lock, list(recorded_outs(lock)))
