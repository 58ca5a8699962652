"""What a catalogue says about a recording, from where catalogues keep it, merged with a stated precedence.

    sidecar JSON (<stem>.json beside the file)     highest: written for this pipeline, by a person or a tool
    the metadata table's row (table.py)            the catalogue's own record
    embedded tags (ID3, Vorbis comments, FLAC,     what the file carries: read with mutagen, the field's library
                   MP4 atoms)

A field is taken from the highest source that has it; `provenance` records, per field, where it came from
(only when the file carries tags at all, so an untagged corpus's manifest is unchanged). Tag names differ by
format; mutagen's "easy" interface maps ID3 frames and MP4 atoms to the Vorbis-style names used here.
Unreadable tags are not a reason to reject a file: decoding decides that, the metadata is then just absent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

# catalogue field -> the easy-tag names that carry it (the first present wins)
TAG_FIELDS: dict[str, tuple[str, ...]] = {
    "title": ("title",),
    "artist": ("artist", "albumartist", "performer"),
    "album": ("album",),
    "genre": ("genre",),
    "date": ("date", "originaldate", "year"),
    "composer": ("composer",),
    "tempo_bpm": ("bpm",),
    "mood": ("mood",),
    "instrument": ("instrument",),
    "key": ("initialkey", "key"),
    "licence": ("copyright", "license", "licence"),
    "tracknumber": ("tracknumber",),
}


# ID3 frames (WAV and AIFF carry ID3 without mutagen's easy mapping) -> the easy names above
ID3_FRAMES = {"TIT2": "title", "TPE1": "artist", "TPE2": "albumartist", "TALB": "album", "TCON": "genre",
              "TDRC": "date", "TCOM": "composer", "TBPM": "bpm", "TMOO": "mood", "TKEY": "initialkey",
              "TCOP": "copyright", "TRCK": "tracknumber"}


def embedded_tags(path: Path) -> tuple[dict[str, Any], str | None]:
    """({field: value}, the tag format's name) for the tags in the file; ({}, None) without any."""
    try:
        import mutagen

        audio = mutagen.File(path, easy=True)
    except Exception:  # noqa: BLE001 - mutagen raises many types for damaged files; decoding judges the file
        return {}, None
    if audio is None or not audio.tags:
        return {}, None
    tags = {}
    for key, value in audio.tags.items():
        key = str(key)
        frame = ID3_FRAMES.get(key.split(":")[0])
        tags[frame or key.lower()] = getattr(value, "text", value)
    found: dict[str, Any] = {}
    for field, names in TAG_FIELDS.items():
        for name in names:
            value = _first(tags.get(name))
            if value:
                found[field] = value
                break
    if "tempo_bpm" in found:
        bpm = _number(found["tempo_bpm"])
        found.pop("tempo_bpm") if bpm is None else found.update(tempo_bpm=bpm)
    if "tracknumber" in found:          # "3/12" -> 3
        number = re.match(r"\s*(\d+)", found["tracknumber"])
        found.pop("tracknumber") if number is None else found.update(tracknumber=int(number[1]))
    return found, tag_format(type(audio.tags).__name__) if found else None


def tag_format(class_name: str) -> str:
    """mutagen's tag class -> what people call the format."""
    for fragment, name in (("ID3", "ID3"), ("FLAC", "FLAC Vorbis comment"), ("VComment", "Vorbis comment"),
                           ("MP4", "MP4 atoms"), ("APEv2", "APEv2"), ("ASF", "ASF")):
        if fragment in class_name:
            return name
    return class_name


def merge(sidecar: dict, tags: dict, tag_format: str | None, table: dict | None = None) -> dict:
    """Fields by precedence: the sidecar over the metadata table over the tags. With a table or tags, a
    `provenance` map {field: "sidecar" | "table" | "tags (FORMAT)"}. An album names the collection a piece
    belongs to when nothing else does."""
    table = table or {}
    if not tags and not table:
        return sidecar
    merged = {**tags, **table, **sidecar}
    if "collection" not in merged and "album" in merged:
        merged["collection"] = merged["album"]
    merged["provenance"] = {field: ("sidecar" if field in sidecar else "table" if field in table
                                    else f"tags ({tag_format})" if field in tags else "album")
                            for field in sorted(merged) if field != "provenance"}
    return merged


def _first(value) -> str | None:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    text = str(value).strip() if value is not None else ""
    return text or None


def _number(text: str) -> float | None:
    try:
        value = float(str(text).strip())
    except ValueError:
        return None
    return value if 20 <= value <= 400 else None
