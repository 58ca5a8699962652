"""Where the corpus comes from: `corpus.source` in params.yaml (`lyra demo --corpus …`, `make demo CORPUS=…`).

    demo                     the offline demo corpus (components/corpus/build.py), the default
    /path/to/library         a folder of audio, searched recursively (sidecar .json and a catalogue table allowed)
    '/path/to/lib/**/*.flac' a glob: the files it matches, laid out below the folder before the first wildcard
    /path/to/catalogue.csv   a metadata table (CSV / Parquet, components/curation/table.py): the files it lists
    s3://bucket/prefix       the objects under a prefix (components/curation/remote.py; credentials from the
                             environment)

`lyra corpus build` brings the source into `data/corpus/audio/` (hard links where the file system allows them,
copies otherwise; a table's rows become `audio/catalogue.parquet`, which curation reads as the folder's
metadata) and writes `listing.json`: every file's size and md5, the version of the source the lifecycle saw.

DVC tracks the source itself where it can: a local folder (a glob's folder, a table's folder) is a dependency of
the corpus stage, so `dvc status` reports added, changed and removed files; an S3 prefix cannot be hashed
without listing it, so that stage is `always_changed` and re-lists the prefix on every `dvc repro` (only new or
changed objects are downloaded; when none are, its output and everything downstream stay as they are).
"""

from __future__ import annotations

import dataclasses
import glob
import os
from pathlib import Path

from components.common.errors import LyraError
from components.common.atomic import link_or_copy
from components.common.lineage import file_digest

DEMO = "demo"
LISTING = "listing.json"
_WILDCARDS = set("*?[")


class CorpusSourceError(LyraError, ValueError):
    """The configured corpus source cannot be read: missing, empty, or not a kind of source."""


@dataclasses.dataclass(frozen=True)
class Source:
    kind: str          # demo | folder | glob | table | s3
    spec: str          # as configured
    root: Path | None  # the local folder the files are laid out below (None: demo, s3)

    @property
    def dvc_dependency(self) -> str | None:
        """What DVC hashes as the source's version (None: nothing local to hash)."""
        return None if self.root is None else str(self.root)

    @property
    def always_changed(self) -> bool:
        """DVC cannot see this source change by itself: the stage re-lists it on every `dvc repro`."""
        return self.kind == "s3"


def parse(spec: str) -> Source:
    """The kind of source `spec` names (no file system access beyond what tells the kinds apart)."""
    from components.curation.table import TABLE_SUFFIXES

    spec = str(spec).strip()
    if spec == DEMO:
        return Source("demo", spec, None)
    if spec.startswith("s3://"):
        if len(spec.rstrip("/")) <= len("s3://"):
            raise CorpusSourceError(f"corpus source {spec!r}: an S3 source names a bucket, s3://bucket[/prefix]")
        return Source("s3", spec.rstrip("/"), None)
    if "://" in spec:
        raise CorpusSourceError(f"corpus source {spec!r}: only local paths and s3:// prefixes are supported")
    path = Path(os.path.expanduser(spec))
    if _WILDCARDS & set(spec):
        parts = path.parts
        fixed = next(i for i, part in enumerate(parts) if _WILDCARDS & set(part))
        return Source("glob", str(path), Path(*parts[:fixed]).resolve() if fixed else Path.cwd())
    if path.suffix.lower() in TABLE_SUFFIXES:
        return Source("table", str(path), path.resolve().parent)
    return Source("folder", str(path), path.resolve())


@dataclasses.dataclass
class Ingest:
    source: Source
    listing: dict[str, dict]   # rel -> {"size", "md5"}: the version of what was brought in
    linked: int = 0            # hard links (no copy)
    copied: int = 0
    downloaded: int = 0        # objects fetched from S3 in this run (new or changed)
    removed: int = 0           # S3 objects gone since the last mirror

    @property
    def files(self) -> int:
        return len(self.listing)


def ingest(source: Source, audio: Path, *, mirror_dir: Path, progress=None, log=None) -> Ingest:
    """Bring the source's files into `audio` (an empty staging folder), with their relative layout."""
    from components.curation.discover import SIDECAR_SUFFIX, is_audio_name

    result = Ingest(source, {})
    table_rows = None
    if source.kind == "s3":
        from components.curation.remote import mirror

        mirrored = mirror(source.spec, mirror_dir, log=log)
        root, result.downloaded, result.removed = mirrored.audio, mirrored.downloaded, mirrored.removed
        files = _walk(root)
    elif source.kind == "table":
        from components.curation.table import read_table

        table_path = Path(os.path.expanduser(source.spec))
        if not table_path.is_file():
            raise CorpusSourceError(f"corpus source {source.spec}: no such table")
        table_rows = read_table(table_path)           # rejected whole when malformed, naming every bad row
        root = source.root
        listed = [root / rel for rel in table_rows]
        sidecars = [p.with_suffix(SIDECAR_SUFFIX) for p in listed if is_audio_name(p)]
        files = sorted(listed + [s for s in sidecars if s.is_file()])
    elif source.kind == "glob":
        root = source.root
        matched = sorted(Path(p) for p in glob.glob(source.spec, recursive=True) if Path(p).is_file())
        if not matched:
            raise CorpusSourceError(f"corpus source {source.spec}: the pattern matches no file")
        sidecars = [p.with_suffix(SIDECAR_SUFFIX) for p in matched if is_audio_name(p)]
        files = sorted(set(matched) | {s for s in sidecars if s.is_file()})
    else:
        root = source.root
        if not root.is_dir():
            raise CorpusSourceError(f"corpus source {source.spec}: no such folder")
        files = _walk(root)
    if not files:
        raise CorpusSourceError(f"corpus source {source.spec}: no files")

    for path in (progress or (lambda it, **kw: it))(files, desc="bringing in the library", unit="file"):
        rel = path.resolve().relative_to(root.resolve()) if source.kind != "s3" else path.relative_to(root)
        target = audio / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if link_or_copy(path, target):
            result.linked += 1
        else:
            result.copied += 1
        result.listing[rel.as_posix()] = {"size": target.stat().st_size, "md5": file_digest(target)}
    if table_rows is not None:        # the table's metadata travels with the files, as the folder's catalogue
        import pandas as pd

        frame = pd.DataFrame([{"path": rel, **meta} for rel, meta in table_rows.items()]).astype(str)
        frame.to_parquet(audio / "catalogue.parquet", index=False)
        result.listing["catalogue.parquet"] = {"size": (audio / "catalogue.parquet").stat().st_size,
                                               "md5": file_digest(audio / "catalogue.parquet")}
    return result


def ingest_metrics(result: Ingest) -> dict:
    sizes = [entry["size"] for entry in result.listing.values()]
    by_suffix: dict[str, int] = {}
    for rel in result.listing:
        suffix = Path(rel).suffix.lower() or "(none)"
        by_suffix[suffix] = by_suffix.get(suffix, 0) + 1
    return {"source_kind": result.source.kind, "files": result.files, "bytes": int(sum(sizes)),
            "files_by_suffix": dict(sorted(by_suffix.items())), "linked": result.linked, "copied": result.copied,
            "downloaded": result.downloaded, "removed_since_last_mirror": result.removed}


def _walk(root: Path) -> list[Path]:
    """Every file below root (hidden ones too: curation accounts for each), symlinked folders not followed."""
    found = []
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs.sort()
        found.extend(Path(folder) / name for name in sorted(names))
    return found
