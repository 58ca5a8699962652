"""Partitions of the corpus listing, and the three stages' per-partition runs: the whole stage afterwards takes
every file's or clip's work from them and ends exactly as a run without partitions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from components.cli import main as lyra
from components.partitions import (
    PartitionError, PartitionsConfig, find, number_of, part_folders, partitions, read_listing,
)
from components.curation.config import CurationConfig
from components.curation.curate import curate_folder
from tests.curation.conftest import synth_music

CONFIG = CurationConfig(clip_s=2.0, min_clip_s=1.0)


def listing(n: int) -> dict[str, str]:
    return {f"a/piece{i:02d}.wav": f"md5-{i}" for i in range(n)}


def test_a_new_file_changes_only_its_own_partitions_key():
    before = {p.number: p for p in partitions(listing(40), 6)}
    grown = {**listing(40), "b/new.wav": "md5-new"}
    after = {p.number: p for p in partitions(grown, 6)}
    changed = {n for n in after if n not in before or after[n].key != before[n].key}
    assert changed == {number_of("b/new.wav", 6)}
    assert sorted(f for p in after.values() for f in p.files) == sorted(grown)     # every file in exactly one


def test_a_sidecar_goes_with_its_audio_and_a_changed_byte_or_catalogue_moves_keys():
    files = {**listing(12), "a/piece03.json": "side"}
    parts = partitions(files, 4)
    [home] = [p for p in parts if "a/piece03.wav" in p.files]
    assert "a/piece03.json" in home.files
    edited = {p.number: p.key for p in partitions({**files, "a/piece03.wav": "other"}, 4)}
    assert [n for n, key in edited.items() if key != {p.number: p.key for p in parts}[n]] == [home.number]
    # the catalogue describes every file: a new catalogue gives every partition a new key, and is in none
    with_table = partitions({**files, "catalogue.csv": "t1"}, 4)
    assert all("catalogue.csv" not in p.files for p in with_table)
    assert not {p.key for p in with_table} & {p.key for p in parts}


def test_a_key_the_listing_moved_past_is_a_clear_error(tmp_path):
    audio = tmp_path / "corpus" / "audio"
    audio.mkdir(parents=True)
    for i in range(6):
        (audio / f"f{i}.wav").write_bytes(bytes([i]) * 10)
    config = PartitionsConfig(count=2)
    key = partitions(read_listing(tmp_path / "corpus"), 2)[0].key
    assert find(tmp_path / "corpus", key, config).key == key
    for i in range(6):
        (audio / f"f{i}.wav").write_bytes(b"changed %d" % i)
    with pytest.raises(PartitionError, match="not in .*listing now"):
        find(tmp_path / "corpus", key, config)


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_curation_of_every_partition_then_the_whole_decodes_nothing_and_equals_a_run_without(tmp_path):
    library = tmp_path / "corpus" / "audio"
    library.mkdir(parents=True)
    for i in range(10):
        sf.write(library / f"piece{i:02d}.wav", synth_music(3.0, 24_000, seed=i), 24_000)
    sf.write(library / "piece03_copy.wav", synth_music(3.0, 24_000, seed=3), 24_000)   # a duplicate across partitions
    (library / "notes.txt").write_text("not audio")                                   # quarantined in its partition
    parts_root = tmp_path / "parts"
    parts = partitions(read_listing(tmp_path / "corpus"), 3)
    assert len(parts) == 3
    for part in parts:
        result = curate_folder(library, parts_root / part.key, CONFIG, only=frozenset(part.files))
        assert result.n_inputs == len(part.files) and result.removed == []
    whole = curate_folder(library, tmp_path / "whole", CONFIG, parts=part_folders(parts_root))
    assert (whole.files_reused, whole.files_from_partitions, whole.source_seconds) == (12, 12, 0.0)
    fresh = curate_folder(library, tmp_path / "fresh", CONFIG)
    assert tree(tmp_path / "whole") == tree(tmp_path / "fresh")        # the duplicate resolved across the catalogue
    assert (fresh.manifest["source_file"] == "piece03_copy.wav").sum() == 0


@pytest.mark.slow
def test_caption_and_token_partitions_through_the_cli_leave_the_whole_stage_nothing_to_analyse_or_encode(tmp_path):
    from components.omnicodec.config import CodecModelConfig
    from components.omnicodec.model import build_codec

    corpus, data = tmp_path / "corpus", tmp_path / "data"
    (corpus / "audio").mkdir(parents=True)
    for i in range(6):
        sf.write(corpus / "audio" / f"piece{i}.wav", synth_music(4.0, 24_000, seed=i), 24_000)
    params = tmp_path / "params.yaml"
    params.write_text("profile: tiny\ntiny:\n  partitions: {count: 2}\n  curation: {clip_s: 2.0, min_clip_s: 1.0, "
                      "workers: 1}\n  captions: {workers: 1}\n  tokens: {clips_per_shard: 4, workers: 1}\n")
    common = ["--params", str(params)]
    assert lyra(["curate", "--input", str(corpus / "audio"), "--out", str(data / "curated"), *common]) == 0
    keys = [p.key for p in partitions(read_listing(corpus), 2)]
    build_codec(CodecModelConfig(channels=4, decoder_channels=16, latent_dim=16, num_codebooks=3, codebook_size=64),
                seed=0).save_pretrained(data / "codec")

    for key in keys:
        assert lyra(["caption", "--curated", str(data / "curated"), "--corpus", str(corpus), "--partition", key,
                     "--out", str(data / "parts" / "captions" / key), "--metrics", str(data / f"c-{key}.json"),
                     *common]) == 0
    analysed = [json.loads((data / f"c-{key}.json").read_text())["clips_analysed"] for key in keys]
    assert all(n > 0 for n in analysed)
    assert lyra(["caption", "--curated", str(data / "curated"), "--out", str(data / "captions"), "--parts",
                 str(data / "parts" / "captions"), "--metrics", str(data / "captions.json"), *common]) == 0
    whole = json.loads((data / "captions.json").read_text())
    assert (whole["clips_analysed"], whole["clips_analysis_reused"]) == (0, sum(analysed))

    tokens = ["tokens", "build", "--codec", str(data / "codec"), "--curated", str(data / "curated"), "--captions",
              str(data / "captions")]
    for key in keys:
        assert lyra([*tokens, "--corpus", str(corpus), "--partition", key, "--out", str(data / "parts" / "tokens" / key),
                     "--metrics", str(data / f"t-{key}.json"), *common]) == 0
    assert lyra([*tokens, "--out", str(data / "tokens"), "--parts", str(data / "parts" / "tokens"),
                 "--metrics", str(data / "tokens.json"), *common]) == 0
    assert json.loads((data / "tokens.json").read_text())["clips_encoded"] == 0
    assert lyra([*tokens, "--out", str(data / "fresh"), "--metrics", str(data / "fresh.json"), *common]) == 0
    assert json.loads((data / "fresh.json").read_text())["clips_encoded"] == whole["n_clips"]
    for name in sorted(p.name for p in (data / "fresh" / "shards").iterdir()):
        assert np.array_equal(np.load(data / "tokens" / "shards" / name), np.load(data / "fresh" / "shards" / name))
    pd.testing.assert_frame_equal(pd.read_parquet(data / "tokens" / "index.parquet"),
                                  pd.read_parquet(data / "fresh" / "index.parquet"))
