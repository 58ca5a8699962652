"""`lyra tokens build` with a real (untrained, small) OmniCodec on a small curated set."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from components.cli import main as lyra
from components.common.audio import write_wav
from components.omnicodec.config import CodecModelConfig
from components.omnicodec.model import build_codec
from components.tokens import TokenDataset

SR = 24000


@pytest.fixture()
def inputs(tmp_path):
    rng = np.random.default_rng(0)
    curated, captions = tmp_path / "curated", tmp_path / "captions"
    (curated / "clips").mkdir(parents=True)
    captions.mkdir()
    rows = []
    for i in range(7):
        seconds = 1.0 if i % 3 else 0.6  # two lengths: clips of equal length are batched
        t = np.arange(int(seconds * SR)) / SR
        wav = 0.3 * np.sin(2 * np.pi * (220 + 40 * i) * t) + 0.01 * rng.standard_normal(t.size)
        write_wav(curated / "clips" / f"c{i}.wav", wav.astype(np.float32), SR)
        rows.append({"clip_id": f"c{i}", "path": f"clips/c{i}.wav", "piece_id": f"p{i // 2}",
                     "split": ("train", "valid", "test")[i % 3], "start_s": 1.0 * (i % 2),
                     "source_duration_s": 2.0, "instrument": ("flute", None)[i == 6]})
    manifest = pd.DataFrame(rows)
    manifest.to_parquet(curated / "manifest.parquet")
    pd.DataFrame({"clip_id": manifest["clip_id"][::-1].tolist(),  # other order: the build must realign
                  "captions": [[f"cap {c} a", f"cap {c} b"] for c in manifest["clip_id"][::-1]]}
                 ).to_parquet(captions / "captions.parquet")
    emb = np.stack([np.full((2, 8), float(c[1:]), np.float32) for c in manifest["clip_id"][::-1]])
    np.save(captions / "embeddings.npy", emb)
    codec_dir = tmp_path / "codec"
    cfg = CodecModelConfig(channels=4, decoder_channels=16, latent_dim=16, num_codebooks=3, codebook_size=64)
    build_codec(cfg, seed=0).save_pretrained(codec_dir)
    return tmp_path, manifest


def build(root, extra=()):
    args = ["tokens", "build", "--codec", str(root / "codec"), "--curated", str(root / "curated"),
            "--captions", str(root / "captions"), "--out", str(root / "tokens"), "--metrics", str(root / "m.json"),
            "--set", "clips_per_shard=3", *extra]
    assert lyra(args) == 0
    return json.loads((root / "m.json").read_text())


def test_build_encodes_every_clip_once_with_its_caption_and_timing(inputs):
    root, manifest = inputs
    metrics = build(root)
    assert metrics["n_clips"] == 7 and metrics["n_shards"] == 3 and metrics["shards_encoded"] == 3
    ds = TokenDataset(root / "tokens", split=None)
    assert sorted(ds.index["clip_id"]) == sorted(manifest["clip_id"])
    assert ds.num_codebooks == 3 and ds.codebook_size == 64
    for clip in ds:
        n = int(clip.clip_id[1:])
        assert clip.codes.shape[0] == 3 and clip.codes.shape[1] == (50 if n % 3 else 30)  # 50 Hz
        assert clip.text_embeddings[0, 0] == pytest.approx(float(n))
        assert clip.captions[0] == f"cap {clip.clip_id} a" and clip.seconds_total == 2.0
        assert clip.instrument == (None if n == 6 else "flute")                          # from the manifest
    assert os.path.isfile(root / "tokens" / "codebook_histograms.png")


def test_rebuild_with_unchanged_inputs_encodes_nothing_and_a_changed_clip_one_shard(inputs):
    root, manifest = inputs
    build(root)
    before = {p.name: p.read_bytes() for p in (root / "tokens" / "shards").iterdir()}
    assert build(root)["shards_encoded"] == 0
    assert {p.name: p.read_bytes() for p in (root / "tokens" / "shards").iterdir()} == before

    write_wav(root / "curated" / "clips" / "c4.wav", np.zeros(SR, np.float32) + 0.1, SR)
    metrics = build(root)
    assert metrics["shards_encoded"] == 1 and metrics["shards_reused"] == 2


def test_a_new_clip_shifting_every_shard_is_the_only_one_encoded_and_the_codes_equal_a_fresh_build(inputs):
    root, manifest = inputs
    build(root)
    # a clip that sorts first ("a0" < "c0"): every shard of the sorted plan changes membership
    write_wav(root / "curated" / "clips" / "a0.wav", np.zeros(SR, np.float32) + 0.05, SR)
    grown = pd.concat([manifest, pd.DataFrame([{**manifest.iloc[0].to_dict(), "clip_id": "a0", "path": "clips/a0.wav",
                                                "piece_id": "p9"}])], ignore_index=True)
    grown.to_parquet(root / "curated" / "manifest.parquet")
    captions = pd.read_parquet(root / "captions" / "captions.parquet")
    pd.concat([captions, pd.DataFrame({"clip_id": ["a0"], "captions": [["cap a0 a", "cap a0 b"]]})],
              ignore_index=True).to_parquet(root / "captions" / "captions.parquet")
    np.save(root / "captions" / "embeddings.npy",
            np.concatenate([np.load(root / "captions" / "embeddings.npy"), np.zeros((1, 2, 8), np.float32)]))
    metrics = build(root)
    assert (metrics["shards_reused"], metrics["clips_encoded"], metrics["clips_reused"]) == (0, 1, 7), metrics
    incremental = {c.clip_id: c.codes.copy() for c in TokenDataset(root / "tokens", split=None)}
    metrics = build(root, ["--set", "reuse_unchanged_shards=false"])          # from scratch
    assert metrics["clips_encoded"] == 8
    fresh = {c.clip_id: c.codes for c in TokenDataset(root / "tokens", split=None)}
    assert incremental.keys() == fresh.keys() and all(np.array_equal(incremental[c], fresh[c]) for c in fresh)


def test_clip_without_caption_is_a_clear_error(inputs):
    root, _ = inputs
    captions = pd.read_parquet(root / "captions" / "captions.parquet").iloc[1:]
    captions.to_parquet(root / "captions" / "captions.parquet")
    np.save(root / "captions" / "embeddings.npy", np.load(root / "captions" / "embeddings.npy")[1:])
    args = ["tokens", "build", "--codec", str(root / "codec"), "--curated", str(root / "curated"),
            "--captions", str(root / "captions"), "--out", str(root / "tokens")]
    assert lyra(args) == 2
    assert not (root / "tokens").exists()


def test_keeping_fewer_codebooks_re_encodes_every_shard(inputs):
    root, _ = inputs
    build(root)
    metrics = build(root, ["--set", "n_quantizers=2"])          # the codes change: no shard may be reused
    assert metrics["shards_encoded"] == 3 and metrics["shards_reused"] == 0
    ds = TokenDataset(root / "tokens", split=None)
    assert ds.num_codebooks == 2 and all(clip.codes.shape[0] == 2 for clip in ds)
