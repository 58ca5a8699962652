"""Curating a library that grew, without redoing what is done.

Each output records its inputs in `sources.parquet`: per source file its key (the md5 of its bytes, of its
sidecar, of its table row, of the curation config and of curation's code) and the seconds it decoded to. The
next run over the same output folder hashes its inputs (I/O only) and takes a file whose key is unchanged from
the previous output as it is: its manifest and quarantine rows, and its clips (hard-linked). Only new and
changed files are decoded. Near-duplicates are then resolved over all clips in input order exactly as in a full
run, so the result is the same as curating everything afresh; for that, a file that lost a clip to a duplicate
last time is curated again (its pre-de-duplication clips were not kept), as is one that crashed.

    keys(inputs, config, stamps)             -> {source_file: key} (unchanged size + mtime: the last key, unread)
    Previous.load(out_dir)                   the previous output's records (empty when there is none)
    previous.reuse(item, key, clips_dir)     -> FileOutcome with its clips linked in, or None
    write_sources(out_dir, outcomes, keys)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pandas as pd

from components.common.atomic import atomic_write_json, link_or_copy
from components.common.lineage import file_digest, stage_code_version
from components.curation.config import CurationConfig
from components.curation.discover import InputFile
from components.curation.process import FileOutcome

SOURCES = "sources.parquet"
NOT_REUSED = ("duplicate", "crashed", "error")      # reasons whose file is curated again


def config_key(config: CurationConfig) -> str:
    """What every file's result depends on besides the file: the config (not how many workers) and the code."""
    settings = config.model_dump(mode="json", exclude={"workers"})
    return hashlib.md5((json.dumps(settings, sort_keys=True) + (stage_code_version("curated_clips") or ""))
                       .encode()).hexdigest()


def keys(inputs: list[InputFile], config: CurationConfig, stamps: Path | None = None) -> dict[str, str]:
    """{source_file: key}. With a `stamps` file (a cache beside the output, not part of it: it holds file times),
    a file whose size and modification time, its sidecar's, its table row and the config are as when its key
    was last computed keeps that key unread, as git's index and DVC's state do; the rest are hashed."""
    common = config_key(config)
    known = _read_json(stamps) if stamps is not None else {}
    out, now = {}, {}
    for item in inputs:
        stamp = json.dumps([common, _stat(item.path), _stat(item.sidecar), item.table or {}], sort_keys=True,
                           default=str)
        previous = known.get(item.rel)
        if previous is not None and previous[0] == stamp:
            out[item.rel] = previous[1]
        else:
            h = hashlib.md5(common.encode())
            for part in (item.path if item.path.is_file() else None, item.sidecar):
                h.update((file_digest(part) if part is not None else "-").encode())
            h.update(json.dumps(item.table or {}, sort_keys=True, default=str).encode())
            out[item.rel] = h.hexdigest()
        now[item.rel] = [stamp, out[item.rel]]
    if stamps is not None:
        atomic_write_json(stamps, now)
    return out


def stamps_file(out: Path) -> Path:
    return out.parent / f".{out.name}.stamps.json"


def _stat(path: Path | None) -> list | None:
    try:
        st = path.stat() if path is not None else None
    except OSError:
        return None
    return None if st is None else [st.st_size, st.st_mtime_ns]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


@dataclasses.dataclass
class Previous:
    folder: Path | None
    records: dict[str, dict]                 # source_file -> {"key", "source_seconds"}
    clips: dict[str, list[dict]]             # source_file -> its manifest rows
    quarantined: dict[str, list[dict]]       # source_file -> its quarantine rows

    @classmethod
    def load(cls, folder: Path | None) -> "Previous":
        empty = cls(None, {}, {}, {})
        if folder is None or not (folder / SOURCES).is_file() or not (folder / "manifest.parquet").is_file():
            return empty
        try:
            sources = pd.read_parquet(folder / SOURCES)
            manifest = pd.read_parquet(folder / "manifest.parquet")
            quarantine = pd.read_parquet(folder / "quarantine.parquet")
        except Exception:  # noqa: BLE001 - an unreadable previous output is no reason to fail: curate afresh
            return empty
        clips: dict[str, list[dict]] = {}
        for row in manifest.to_dict("records"):
            clips.setdefault(row["source_file"], []).append(row)
        quarantined: dict[str, list[dict]] = {}
        for row in quarantine.to_dict("records"):
            quarantined.setdefault(row["source_file"], []).append(row)
        records = {r["source_file"]: {"key": r["key"], "source_seconds": float(r["source_seconds"])}
                   for r in sources.to_dict("records")}
        return cls(folder, records, clips, quarantined)

    def reuse(self, item: InputFile, key: str, clips_dir: Path) -> FileOutcome | None:
        record = self.records.get(item.rel)
        if record is None or record["key"] != key:
            return None
        quarantined = self.quarantined.get(item.rel, [])
        if any(q["reason"] in NOT_REUSED for q in quarantined):
            return None
        rows = sorted(self.clips.get(item.rel, []), key=lambda r: r["segment_index"])
        sources = [self.folder / r["path"] for r in rows]
        if not all(p.is_file() for p in sources):
            return None
        for row, source in zip(rows, sources):
            target = clips_dir / f"{row['clip_id']}.wav"
            link_or_copy(source, target)
        return FileOutcome(item.rel, [_plain(r) for r in rows], [_plain(q) for q in quarantined],
                           source_seconds=record["source_seconds"])

    def removed(self, inputs: list[InputFile]) -> list[str]:
        """Source files the previous output had that the input no longer has: their clips are gone now."""
        return sorted(set(self.records) - {i.rel for i in inputs})


def write_sources(out_dir: Path, outcomes: list[FileOutcome], file_keys: dict[str, str]) -> None:
    pd.DataFrame([{"source_file": o.source_file, "key": file_keys[o.source_file], "source_seconds": o.source_seconds}
                  for o in outcomes], columns=["source_file", "key", "source_seconds"]) \
        .to_parquet(out_dir / SOURCES, index=False)


def _plain(row: dict) -> dict:
    """A row read back from parquet as the plain values a fresh FileOutcome holds (NaN/NA -> None)."""
    out = {}
    for k, v in row.items():
        if v is pd.NA or (isinstance(v, float) and v != v):
            v = None
        elif hasattr(v, "item"):
            v = v.item()
        out[k] = v
    return out
