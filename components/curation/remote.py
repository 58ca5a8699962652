"""A library in object storage: `lyra curate --input s3://bucket/prefix`.

The prefix is mirrored into a folder beside the output (`.<out>.source/`), through fsspec's s3fs (what DVC's S3
remote uses too; credentials and AWS_ENDPOINT_URL from the environment). An object is downloaded only when
its ETag or size changed since the last mirror, and local files whose object is gone are removed, so a
nightly ingest moves only what is new; curation then reads the mirror as any folder (and, incrementally,
decodes only new and changed files). `listing.json` in the mirror records each object's ETag: the source's
version.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from components.common.atomic import atomic_write_json
from components.common.errors import LyraError

LISTING = "listing.json"


class RemoteSourceError(LyraError, RuntimeError):
    """The object-storage prefix cannot be read: missing, empty or forbidden."""


def is_remote(value: str | Path) -> bool:
    return str(value).startswith("s3://")


def mirror_folder(out: Path) -> Path:
    return out.parent / f".{out.name}.source"


@dataclasses.dataclass(frozen=True)
class Mirrored:
    audio: Path          # the folder of files (listing.json beside it)
    objects: int
    downloaded: int      # new or changed since the last mirror
    removed: int         # gone since the last mirror


def list_objects(url: str) -> dict[str, dict]:
    """{path below the prefix: {"etag", "size"}} of the objects under `url` (what a sensor compares between
    ticks, and what `mirror` fetches); clear errors for a missing bucket, an empty prefix, denied access."""
    fs, prefix, objects = _find(url)
    return {rel: _version(info) for rel, info in sorted(objects.items())}


def _version(info: dict) -> dict:
    return {"etag": str(info.get("ETag") or info.get("etag") or ""), "size": int(info.get("size") or 0)}


def _find(url: str):
    import fsspec

    fs = fsspec.filesystem("s3", skip_instance_cache=True)     # the environment as it is now, not a cached client
    prefix = url[len("s3://"):].rstrip("/")
    try:
        found = fs.find(prefix, detail=True)
    except PermissionError as exc:
        raise RemoteSourceError(f"{url}: access denied ({exc}); check the credentials (AWS_ACCESS_KEY_ID / "
                                f"AWS_SECRET_ACCESS_KEY) and that they may list this bucket") from None
    except FileNotFoundError:
        raise RemoteSourceError(f"{url}: no such bucket") from None
    except OSError as exc:
        raise RemoteSourceError(f"{url}: cannot list ({type(exc).__name__}: {exc})") from None
    objects = {key[len(prefix):].lstrip("/"): info for key, info in found.items()
               if info.get("type", "file") == "file" and key[len(prefix):].lstrip("/")}
    if not objects:
        raise RemoteSourceError(f"{url}: no objects under this prefix (is it spelt right? `aws s3 ls {url}/`)")
    return fs, prefix, objects


def mirror(url: str, folder: Path, log=None) -> Mirrored:
    """Bring `folder` in step with the objects under `url`."""
    fs, prefix, objects = _find(url)
    audio = folder / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    listing_file = folder / LISTING
    before = json.loads(listing_file.read_text()) if listing_file.is_file() else {}
    after, fetched = {}, 0
    for rel, info in sorted(objects.items()):
        version = _version(info)
        local = audio / rel
        if before.get(rel) != version or not local.is_file():
            local.parent.mkdir(parents=True, exist_ok=True)
            try:
                fs.get(f"{prefix}/{rel}", str(local))
            except PermissionError as exc:
                raise RemoteSourceError(f"{url}/{rel}: access denied while downloading ({exc})") from None
            fetched += 1
        after[rel] = version
    gone = sorted(set(before) - set(after))
    for rel in gone:
        (audio / rel).unlink(missing_ok=True)
    atomic_write_json(listing_file, after)
    if log is not None:
        log.info("%s: %d objects, %d downloaded (new or changed), %d removed since the last mirror",
                 url, len(after), fetched, len(gone))
    return Mirrored(audio, len(after), fetched, len(gone))
