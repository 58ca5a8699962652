import numpy as np
import pandas as pd
import pytest

from components.tokens import ClipTokens, TokenDataset, write_token_shards
from components.tokens.checks import codebook_statistics, codes_in_range, every_clip_in_exactly_one_shard
from components.tokens.shards import plan_shards, shard_key


def make_clips(n=23, k=4, vocab=1024, seed=0):
    rng = np.random.default_rng(seed)
    return [
        ClipTokens(
            clip_id=f"clip-{i:03d}", codes=rng.integers(0, vocab, (k, int(rng.integers(50, 120)))),
            text_embeddings=rng.standard_normal((3, 16)), captions=[f"caption {i} v{j}" for j in range(3)],
            seconds_start=10.0 * (i % 4), seconds_total=40.0, piece_id=f"piece-{i // 4}",
            split=("train", "valid", "test")[i % 3],
        )
        for i in range(n)
    ]


@pytest.fixture()
def dataset_dir(tmp_path):
    clips = make_clips()
    write_token_shards(tmp_path, clips, codebook_size=1024, frame_rate=50.0, sample_rate=24000, clips_per_shard=5)
    return tmp_path, clips


def test_every_clip_round_trips_exactly(dataset_dir):
    root, clips = dataset_dir
    ds = TokenDataset(root, split=None)
    assert len(ds) == len(clips) and ds.num_codebooks == 4 and ds.text_dim == 16
    by_id = {c.clip_id: c for c in clips}
    for item in ds:
        src = by_id[item.clip_id]
        np.testing.assert_array_equal(item.codes, src.codes)
        np.testing.assert_allclose(item.text_embeddings, src.text_embeddings, atol=1e-2)  # stored as float16
        assert item.captions == list(src.captions) and item.seconds_total == 40.0


def test_splits_partition_the_clips(dataset_dir):
    root, clips = dataset_dir
    sizes = [len(TokenDataset(root, split=s)) for s in ("train", "valid", "test")]
    assert sum(sizes) == len(clips) and all(sizes)


def test_shards_are_memory_mapped_fixed_size_groups(dataset_dir):
    root, _ = dataset_dir
    ds = TokenDataset(root, split=None)
    assert isinstance(ds.shard(0), np.memmap)
    assert ds.index.groupby("shard").size().tolist() == [5, 5, 5, 5, 3]


def test_shard_plan_and_keys_depend_only_on_content():
    ids = [f"c{i}" for i in range(7)]
    assert plan_shards(ids, 3) == plan_shards(list(reversed(ids)), 3) == [["c0", "c1", "c2"], ["c3", "c4", "c5"], ["c6"]]
    key = shard_key("codec-a", [("c0", "d0"), ("c1", "d1")], 4)
    assert key == shard_key("codec-a", [("c0", "d0"), ("c1", "d1")], 4)
    assert key != shard_key("codec-b", [("c0", "d0"), ("c1", "d1")], 4)
    assert key != shard_key("codec-a", [("c0", "d0"), ("c1", "CHANGED")], 4)
    assert key != shard_key("codec-a", [("c0", "d0"), ("c1", "d1")], 2)          # fewer codebooks kept: new codes


def test_out_of_range_codes_are_refused(tmp_path):
    clips = make_clips(n=2)
    clips[1].codes[0, 0] = 1024
    with pytest.raises(ValueError, match="outside"):
        write_token_shards(tmp_path, clips, codebook_size=1024, frame_rate=50.0, sample_rate=24000)


def test_accounting_check_catches_missing_and_duplicated_clips(dataset_dir):
    root, clips = dataset_dir
    ds = TokenDataset(root, split=None)
    ids = [c.clip_id for c in clips]
    assert every_clip_in_exactly_one_shard(ids, ds.index).passed
    assert not every_clip_in_exactly_one_shard(ids + ["never-encoded"], ds.index).passed
    doubled = pd.concat([ds.index, ds.index.iloc[:1]])
    outcome = every_clip_in_exactly_one_shard(ids, doubled)
    assert not outcome.passed and outcome.details["duplicated"] == 1
    assert codes_in_range(ds).passed


def test_codebook_statistics():
    counts = np.array([[5, 5, 5, 5], [20, 0, 0, 0]])
    stats = codebook_statistics(counts)
    assert stats["codebook_0_perplexity"] == pytest.approx(4.0)
    assert stats["codebook_1_perplexity"] == pytest.approx(1.0)
    assert stats["codebook_1_usage"] == 0.25
