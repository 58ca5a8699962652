"""Lineage: what an artifact was made from (inputs, params, code) so any output can be traced.

Every stage writes `lineage.json` beside its outputs; the orchestrator attaches the same
facts to the Dagster materialization and DVC records the data hashes in dvc.lock.

lineage.json is part of a hashed output, so it holds only what the output is a function of:
input digests, params, the code's content digest, the environment. No wall-clock time and no
git commit (a commit elsewhere in the repository would change the output's hash): when and from
which commit a version was made is the registry's record (components/registry), not the artifact's.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Iterable, Mapping

from components.common.atomic import atomic_write_json

_IGNORED_PARTS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
_IGNORED_SUFFIXES = {".pyc", ".pyo", ".tmp"}
REPO_ROOT = Path(__file__).resolve().parents[2]


def _files(root: Path) -> Iterable[Path]:
    if root.is_file():
        yield root
        return
    for p in sorted(root.rglob("*")):
        if p.is_file() and not (_IGNORED_PARTS & set(p.parts)) and p.suffix not in _IGNORED_SUFFIXES \
                and not p.name.startswith("."):
            yield p


def file_digest(path: str | os.PathLike, algo: str = "md5") -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_digest(*roots: str | os.PathLike) -> str:
    """One digest over files (relative names + contents) below each root, order-independent of the FS."""
    h = hashlib.md5()
    for root in roots:
        root = Path(root)
        if not root.exists():
            h.update(f"missing:{root.name}".encode())
            continue
        for f in _files(root):
            rel = f.relative_to(root if root.is_dir() else root.parent).as_posix()
            # surrogateescape: a file name that is not valid UTF-8 must not crash the digest
            h.update(rel.encode("utf-8", "surrogateescape") + b"\0" + file_digest(f).encode() + b"\n")
    return h.hexdigest()


def code_version(*source_paths: str | os.PathLike) -> str:
    """Short content digest of the source that defines a stage (paths relative to the repo root)."""
    return tree_digest(*[REPO_ROOT / p for p in source_paths])[:12]


def stage_code_version(stage: str) -> str | None:
    """Digest of the source a pipeline stage's command imports: the files DVC and Dagster track for it
    (components/common/code_deps.py). None for a name that is not a pipeline stage."""
    from components.pipeline import stage_by_name   # the stage table sits above this module

    try:
        return code_version(*stage_by_name(stage).code_paths)
    except KeyError:
        return None


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
        rev = out.stdout.strip()
        if out.returncode != 0 or not rev:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "components"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


def write_lineage(
    out_dir: str | os.PathLike,
    *,
    stage: str,
    inputs: Mapping[str, str | os.PathLike],
    params: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> dict:
    """Write `<out_dir>/lineage.json`: input digests, params, code version, environment (deterministic)."""
    import torch  # every stage has torch; its version matters for reproducing models

    record = {
        "stage": stage,
        "inputs": {name: {"path": os.fspath(p), "digest": tree_digest(p)} for name, p in inputs.items()},
        "params": _plain(params),
        "code_version": stage_code_version(stage),
        "environment": {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine()},
        **dict(extra or {}),
    }
    atomic_write_json(Path(out_dir) / "lineage.json", record)
    return record
