"""A library that grows: the second curation takes unchanged files from the previous output, decodes only what
is new or changed, drops what was removed, and ends byte-identical to curating everything afresh."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from components.curation.config import CurationConfig
from components.curation.curate import curate_folder
from tests.curation.conftest import synth_music

CONFIG = CurationConfig(clip_s=2.0, min_clip_s=1.0)


def write(folder: Path, name: str, seed: int, seconds: float = 3.0) -> None:
    sf.write(folder / name, synth_music(seconds, 24_000, seed=seed), 24_000)


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_grown_library_curates_only_what_is_new_and_ends_as_a_fresh_run(tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    for i in range(12):
        write(library, f"piece{i:02d}.wav", seed=i)
    write(library, "piece03_copy.wav", seed=3)                  # a near-duplicate: curated again each time
    first = curate_folder(library, tmp_path / "v1", CONFIG)
    assert first.files_reused == 0

    for i in range(12, 15):                                     # 3 new files, one changed, one removed
        write(library, f"piece{i:02d}.wav", seed=i)
    write(library, "piece05.wav", seed=105)
    (library / "piece07.wav").unlink()
    again = curate_folder(library, tmp_path / "v2", CONFIG, previous=tmp_path / "v1")
    # 15 inputs: 3 new, 1 changed and the copy that lost its clips to piece03 (as a duplicate) curated again
    assert (again.n_inputs, again.files_reused, again.removed) == (15, 10, ["piece07.wav"])
    assert not any("piece07" in s for s in again.manifest["source_file"])

    fresh = curate_folder(library, tmp_path / "fresh", CONFIG)
    assert tree(tmp_path / "v2") == tree(tmp_path / "fresh")    # every clip, the manifest, the quarantine
    assert fresh.files_reused == 0


def test_a_changed_config_or_a_damaged_previous_output_curates_everything(tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    for i in range(4):
        write(library, f"piece{i}.wav", seed=i)
    curate_folder(library, tmp_path / "v1", CONFIG)
    louder = CONFIG.model_copy(update={"loudness_target_lufs": -20.0})
    assert curate_folder(library, tmp_path / "v2", louder, previous=tmp_path / "v1").files_reused == 0
    shutil.rmtree(tmp_path / "v1" / "clips")                    # the previous clips are gone: nothing to link
    assert curate_folder(library, tmp_path / "v3", CONFIG, previous=tmp_path / "v1").files_reused == 0
    (tmp_path / "v1" / "sources.parquet").write_bytes(b"not parquet")
    assert curate_folder(library, tmp_path / "v4", CONFIG, previous=tmp_path / "v1").files_reused == 0


def test_unchanged_files_are_not_read_again_and_a_touched_one_is(tmp_path, monkeypatch):
    import components.curation.incremental as incremental

    library = tmp_path / "library"
    library.mkdir()
    for i in range(4):
        write(library, f"piece{i}.wav", seed=i)
    out = tmp_path / "curated"
    curate_folder(library, tmp_path / "v1", CONFIG, previous=out)       # stamps beside `out`, as the CLI passes
    shutil.move(tmp_path / "v1", out)
    read = []
    real_digest = incremental.file_digest
    monkeypatch.setattr(incremental, "file_digest", lambda p, *a: read.append(Path(p).name) or real_digest(p, *a))
    write(library, "piece2.wav", seed=102)                              # changed: size or mtime moves
    again = curate_folder(library, tmp_path / "v2", CONFIG, previous=out)
    assert read == ["piece2.wav"] and again.files_reused == 3
