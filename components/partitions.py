"""The corpus cut into partitions: the unit of fan-out for curation, captioning and token encoding.

A file belongs to partition `md5(its path without extension) mod count` (an audio file and its sidecar go
together; a file keeps its partition when its bytes change). A partition's key is its number and a digest of
its members' paths and md5s (and of the catalogue table, which describes every file): a key names one exact
content, so a partition processed once never goes stale, and files arriving, changing or leaving give new keys
to the partitions they fall in only. Dagster's dynamic partitions follow the keys (orchestration/fanout.py).

    data/corpus/listing.json ─► partitions(listing, count) ─► [Partition(key, files)]
    lyra curate | caption | tokens build --partition KEY ─► data/parts/<stage>/KEY/
        (the per-file work of that partition, in the form the whole stage reuses: `--parts data/parts/<stage>`)

The whole stage (unpartitioned) still makes the catalogue-wide decisions (near-duplicates across the
catalogue, held-out groups, shard plan, captions' embeddings) and takes each file's or clip's work from a
partition whenever the content key it computes itself matches: a partition can only save work, never change
a result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path, PurePosixPath

from pydantic import Field

from components.common.errors import LyraError
from components.config import StageConfig

LISTING = "listing.json"
CATALOGUE_NAMES = ("catalogue.csv", "catalogue.parquet")   # a folder's metadata table: every partition reads it
SECTION = "partitions"


class PartitionsConfig(StageConfig):
    # Files are hashed into this many partitions. Keep it fixed as the catalogue grows (a new count moves
    # every file); size it so that a partition holds a few hours of audio: the per-partition overhead
    # (process start, imports, models loaded) is 6-9 s on 2 cores (benchmarks/ingest_scaling.py).
    count: int = Field(8, ge=1)
    # Partitions the lifecycle's curation, captioning and token steps run at once before their whole-stage
    # step (one pod each through the Kubernetes launcher, one subprocess each locally). 0: no fan-out; each
    # stage takes the whole catalogue in one process with its own workers (tiny: 2 cores, nothing to gain).
    concurrency: int = Field(0, ge=0)


class PartitionError(LyraError, ValueError):
    """A partition key that is not in the corpus's current listing (the listing moved since it was planned)."""


@dataclasses.dataclass(frozen=True)
class Partition:
    key: str                   # "NNNN-<digest>": the number, then what it holds
    number: int
    files: tuple[str, ...]     # paths relative to the corpus's audio folder (the curated `source_file`)


def group_of(rel: str) -> str:
    """What decides a file's partition: its path without the extension, so `x.wav` and `x.json` stay together."""
    path = PurePosixPath(rel)
    return str(path.with_suffix("")) if path.suffix else str(path)


def number_of(rel: str, count: int) -> int:
    return int(hashlib.md5(group_of(rel).encode()).hexdigest()[:8], 16) % count


def read_listing(corpus: Path) -> dict[str, str]:
    """{rel path: md5} of the corpus's audio folder: its listing.json (`lyra corpus build` of a library) or, for
    the demo corpus which has none, the files hashed."""
    from components.common.lineage import file_digest

    listing = corpus / LISTING
    if listing.is_file():
        try:
            files = json.loads(listing.read_text())["files"]
            return {rel: entry["md5"] for rel, entry in files.items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise PartitionError(f"{listing}: not a corpus listing ({exc})") from exc
    audio = corpus / "audio"
    if not audio.is_dir():
        raise PartitionError(f"{corpus}: no {LISTING} and no audio/ folder; build the corpus first (`lyra corpus build`)")
    return {p.relative_to(audio).as_posix(): file_digest(p) for p in sorted(audio.rglob("*")) if p.is_file()}


def partitions(listing: dict[str, str], count: int) -> list[Partition]:
    """The non-empty partitions of `listing`, by number."""
    shared = "".join(f"{rel}\0{md5}\n" for rel, md5 in sorted(listing.items()) if rel in CATALOGUE_NAMES)
    members: dict[int, list[str]] = {}
    for rel in sorted(listing):
        if rel not in CATALOGUE_NAMES:
            members.setdefault(number_of(rel, count), []).append(rel)
    out = []
    for number in sorted(members):
        files = tuple(members[number])
        digest = hashlib.md5((shared + "".join(f"{rel}\0{listing[rel]}\n" for rel in files)).encode()).hexdigest()
        out.append(Partition(f"{number:04d}-{digest[:12]}", number, files))
    return out


def load_config(profile: str | None = None, params_path: Path | None = None) -> PartitionsConfig:
    from components.config import load_stage_config

    return load_stage_config(SECTION, PartitionsConfig, params_path=params_path, profile=profile)


def current(corpus: Path, config: PartitionsConfig | None = None) -> list[Partition]:
    return partitions(read_listing(corpus), (config or load_config()).count)


def find(corpus: Path, key: str, config: PartitionsConfig | None = None) -> Partition:
    """The partition `key` of the corpus as it is now; a clear error when the listing has moved on."""
    found = {p.key: p for p in current(corpus, config)}
    if key not in found:
        number = key.split("-", 1)[0]
        now = [k for k in found if k.startswith(number + "-")]
        raise PartitionError(f"partition {key} is not in {corpus}'s listing now"
                             + (f" (partition {number} is {now[0]}: its files changed)" if now else "")
                             + f"; {len(found)} partitions: {', '.join(list(found)[:5])}{' ...' if len(found) > 5 else ''}")
    return found[key]


def part_folders(parts: Path | None) -> list[Path]:
    """The partition outputs under `parts` (data/parts/<stage>), by name; none when it does not exist."""
    if parts is None or not parts.is_dir():
        return []
    return sorted(p for p in parts.iterdir() if p.is_dir() and not p.name.startswith("."))
