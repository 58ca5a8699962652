"""Find the inputs of a curation run: every file below the input folder (or every file a metadata table
lists), and which are sidecars.

A `.json` file is a SIDECAR (metadata, not an input) when an audio file with the same stem lies
in the same folder (`song.wav` + `song.json`). Every other file is an INPUT and must end up in
the manifest or the quarantine: audio-extension files are decoded, anything else, an orphan
`.json` included, is quarantined as `unsupported_format`. Hidden files and every subfolder
count too: a file nobody looked at is a file that can go missing.

A `catalogue.csv` or `catalogue.parquet` at the top of the folder is the folder's METADATA TABLE
(components/curation/table.py, paths relative to the folder; what `lyra corpus build` writes for a table
source): its rows are the metadata of the files they name, and it is not an input itself.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from components.common.audio import AUDIO_SUFFIXES

SIDECAR_SUFFIX = ".json"
CATALOGUE_NAMES = ("catalogue.csv", "catalogue.parquet")


@dataclasses.dataclass(frozen=True)
class InputFile:
    path: Path                  # absolute
    rel: str                    # POSIX path relative to the input folder: the `source_file` column
    sidecar: Path | None        # <stem>.json beside it, if any
    is_audio: bool              # has an audio extension (decoding decides whether it really is audio)
    # its row of a metadata table (components/curation/table.py) when the input is a table
    table: dict | None = dataclasses.field(default=None, hash=False, compare=False)


def is_audio_name(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES


def printable(name: str) -> str:
    """A file name that is valid UTF-8 text: undecodable bytes (surrogate escapes) become U+FFFD,
    so one oddly named file cannot make the parquet tables unwritable."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def discover(input_dir: Path) -> tuple[list[InputFile], list[Path]]:
    """(inputs sorted by relative path, sidecar files). Symlinked folders are not followed. A metadata table
    (CSV / Parquet) instead of a folder: exactly the files it lists, each with its row."""
    from components.curation.table import is_table, read_table

    if is_table(input_dir):
        rows, root = read_table(input_dir), input_dir.parent
        inputs = []
        for rel, meta in rows.items():
            path = root / rel
            sidecar = path.with_suffix(SIDECAR_SUFFIX) if is_audio_name(path) else None
            inputs.append(InputFile(path=path, rel=rel, sidecar=sidecar if sidecar is not None and sidecar.is_file()
                                    else None, is_audio=is_audio_name(path), table=meta))
        return sorted(inputs, key=lambda i: i.rel), [i.sidecar for i in inputs if i.sidecar is not None]
    files: list[Path] = []
    for root, dirs, names in os.walk(input_dir, followlinks=False):
        dirs.sort()
        files.extend(Path(root) / name for name in sorted(names))
    catalogue = folder_catalogue(input_dir)
    rows = read_table(catalogue) if catalogue is not None else {}
    audio_stems = {(f.parent, f.stem) for f in files if is_audio_name(f)}
    inputs, sidecars = [], [catalogue] if catalogue is not None else []
    for f in files:
        if f == catalogue:
            continue
        if f.suffix.lower() == SIDECAR_SUFFIX and (f.parent, f.stem) in audio_stems:
            sidecars.append(f)
            continue
        sidecar = f.with_suffix(SIDECAR_SUFFIX) if is_audio_name(f) else None
        rel = printable(f.relative_to(input_dir).as_posix())
        inputs.append(InputFile(
            path=f, rel=rel, sidecar=sidecar if sidecar is not None and sidecar.is_file() else None,
            is_audio=is_audio_name(f), table=rows.get(rel),
        ))
    return sorted(inputs, key=lambda i: i.rel), sidecars


def folder_catalogue(folder: Path) -> Path | None:
    """The folder's own metadata table, if it has one (two would disagree about which wins: refused)."""
    from components.curation.table import CatalogueTableError

    found = [folder / name for name in CATALOGUE_NAMES if (folder / name).is_file()]
    if len(found) > 1:
        raise CatalogueTableError(f"{folder}: both {found[0].name} and {found[1].name}; keep one metadata table")
    return found[0] if found else None
