"""Content-addressed storage of deployable weights: a version's files live under their digest.

    <store>/artifacts/<sha256 of the file list>/model.safetensors
                                               /config.json
                                               /adapter/adapter_model.safetensors   (patterns may reach sub-folders)

The digest covers every file's name and sha256, so the same weights always land in the same
folder and a folder, once written, is never rewritten: a retrained model is a new folder, and
whatever an older version points at stays as it was.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from components.common.atomic import atomic_dir
from components.common.lineage import file_digest
from components.common.errors import LyraError


class ArtifactError(LyraError, RuntimeError):
    pass


@dataclass(frozen=True)
class Artifact:
    digest: str                       # sha256 over (name, sha256) of every file
    files: dict[str, dict]            # name -> {"sha256", "bytes"}

    def to_json(self) -> dict:
        return {"digest": self.digest, "files": self.files}


def deployable_files(model_dir: Path, patterns: tuple[str, ...]) -> dict[str, Path]:
    """{relative name: path} of the files matching any pattern, globbed from `model_dir` ("*.safetensors" is
    the top level only, so training state in checkpoints/ never matches; "adapter/*" reaches a sub-folder)."""
    if not model_dir.is_dir():
        raise ArtifactError(f"{model_dir}: no such model folder")
    files = {p.relative_to(model_dir).as_posix(): p for g in patterns for p in model_dir.glob(g) if p.is_file()}
    if not any(name.endswith(".safetensors") for name in files):
        raise ArtifactError(f"{model_dir}: no weights (*.safetensors) among {', '.join(patterns)}")
    return dict(sorted(files.items()))


def describe(files: dict[str, Path]) -> Artifact:
    listing = {name: {"sha256": file_digest(p, "sha256"), "bytes": p.stat().st_size} for name, p in files.items()}
    h = hashlib.sha256()
    for name in sorted(listing):
        h.update(f"{name}\0{listing[name]['sha256']}\n".encode())
    return Artifact(h.hexdigest(), listing)


class ArtifactStore:
    def __init__(self, root: Path):
        self.root = Path(root) / "artifacts"

    def path(self, digest: str) -> Path:
        return self.root / digest

    def put(self, model_dir: Path, patterns: tuple[str, ...]) -> Artifact:
        """Copy the deployable files of `model_dir` into the store (once) and describe them."""
        files = deployable_files(Path(model_dir), patterns)
        artifact = describe(files)
        target = self.path(artifact.digest)
        if target.is_dir():
            self.verify(artifact)           # already stored: never overwritten, only checked
            return artifact
        with atomic_dir(target) as staging:
            for name, f in files.items():
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, staging / name)
        self.verify(artifact)
        return artifact

    def verify(self, artifact: Artifact) -> Path:
        """The stored folder, after checking every file against its recorded digest."""
        folder = self.path(artifact.digest)
        for name, meta in artifact.files.items():
            f = folder / name
            if not f.is_file():
                raise ArtifactError(f"{folder}: {name} is missing from the stored artifact")
            if file_digest(f, "sha256") != meta["sha256"]:
                raise ArtifactError(f"{f}: contents changed since it was stored (sha256 mismatch)")
        return folder
