"""A catalogue given as a metadata table: CSV or Parquet, one row per recording.

    path     (required) the audio file, relative to the table's folder
    title, artist, album, genre, instrument, mood, bpm, key, licence, composer, date, work
             (optional) what the catalogue knows; empty cells are unknown
    split    (optional) train / valid / test / ood: the team's own split, which wins over any grouping

Other columns are kept in the clip's metadata as they are. The table is the list of inputs: only the files it
names are curated. A malformed table is rejected whole, naming the file, every bad row (its line in a CSV) and
the problem: a half-read catalogue would quietly drop recordings.
"""

from __future__ import annotations

import math
from pathlib import Path, PurePosixPath
from typing import Any

from components.common.errors import LyraError
from components.common.splits import SPLITS

TABLE_SUFFIXES = (".csv", ".parquet")
# table column -> the metadata field it fills (the names embedded tags and sidecars use)
COLUMNS = {"title": "title", "artist": "artist", "album": "album", "genre": "genre", "instrument": "instrument",
           "mood": "mood", "bpm": "tempo_bpm", "tempo_bpm": "tempo_bpm", "key": "key", "licence": "licence",
           "license": "licence", "composer": "composer", "date": "date", "work": "work", "split": "split"}
MAX_LISTED = 10


class CatalogueTableError(LyraError, ValueError):
    """The metadata table cannot be used as given; nothing was curated from it."""


def is_table(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in TABLE_SUFFIXES


def read_table(path: Path) -> dict[str, dict[str, Any]]:
    """{path as written (POSIX, relative to the table's folder): its metadata}, or CatalogueTableError."""
    import pandas as pd

    try:
        frame = (pd.read_csv(path, dtype=str, keep_default_na=False) if path.suffix.lower() == ".csv"
                 else pd.read_parquet(path))
    except Exception as exc:  # noqa: BLE001 - pandas/pyarrow raise many types for a damaged file
        raise CatalogueTableError(f"{path}: not a readable {path.suffix[1:].upper()} table "
                                  f"({type(exc).__name__}: {str(exc)[:200]})") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    if "path" not in frame.columns:
        raise CatalogueTableError(f"{path}: no `path` column (columns: {', '.join(frame.columns) or 'none'}); each "
                                  f"row names its audio file relative to the table's folder")
    if frame.columns.duplicated().any():
        raise CatalogueTableError(f"{path}: column names repeat: {sorted(set(frame.columns[frame.columns.duplicated()]))}")
    first_line = 2 if path.suffix.lower() == ".csv" else 1          # the header is line 1 of a CSV
    where = "line" if path.suffix.lower() == ".csv" else "row"
    problems: list[str] = []
    rows: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for i, record in enumerate(frame.to_dict("records")):
        at = f"{where} {i + first_line}"
        named = "" if _blank(record.get("path")) else _posix(str(record["path"]))
        if named and named in seen:
            problems.append(f"{at}: {named} is listed twice")
            continue
        seen.add(named)
        meta, problem = _row(record, path.parent)
        if problem:
            problems.append(f"{at}: {problem}")
            continue
        rows[meta.pop("path")] = meta
    if problems:
        more = f" (and {len(problems) - MAX_LISTED} more)" if len(problems) > MAX_LISTED else ""
        raise CatalogueTableError(f"{path}: {len(problems)} bad row(s), nothing curated: "
                                  + "; ".join(problems[:MAX_LISTED]) + more)
    if not rows:
        raise CatalogueTableError(f"{path}: no rows")
    return rows


def _row(record: dict, root: Path) -> tuple[dict[str, Any], str | None]:
    meta: dict[str, Any] = {}
    for column, value in record.items():
        if _blank(value):
            continue
        text = str(value).strip()
        field = COLUMNS.get(column, column)
        if column == "path":
            rel = PurePosixPath(_posix(text))
            if rel.is_absolute() or ".." in rel.parts:
                return {}, f"path {text!r} must be relative to the table's folder, without '..'"
            if not (root / rel).is_file():
                return {}, f"{text}: no such file beside the table"
            meta["path"] = rel.as_posix()
        elif field == "tempo_bpm":
            try:
                bpm = float(text)
            except ValueError:
                return {}, f"{column} {text!r} is not a number"
            if not 20 <= bpm <= 400:
                return {}, f"{column} {bpm:g} is outside 20-400"
            meta[field] = bpm
        elif field == "split":
            if text not in SPLITS:
                return {}, f"split {text!r} is not one of {', '.join(SPLITS)}"
            meta[field] = text
        else:
            meta[field] = text
    if "path" not in meta:
        return {}, "empty path"
    return meta, None


def _blank(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _posix(text: str) -> str:
    """A path as the table writes it, with Windows separators read as '/'."""
    return PurePosixPath(text.strip().replace("\\", "/")).as_posix()
