"""Token shards: the curated corpus encoded once with OmniCodec, so LM training never decodes audio.

    <out>/
      meta.json                 codec facts (K, codebook size, frame rate), dtype, shard plan
      index.parquet             one row per clip: where its codes live + caption + timing + split
      text_embeddings.npy       float16 [n_clips, n_phrasings, D], row = index.text_row
      shards/shard-00000.npy    int16 [n_frames_in_shard, K], clips back to back (frame-major)

`TokenDataset` memory-maps the shards: reading a window is a slice, not a decode.
"""


def __getattr__(name: str):
    # imported on first use, so that reading the stage declaration (declaration.py) loads no model library
    if name in ("TokenClip", "TokenDataset"):
        from components.tokens import dataset

        return getattr(dataset, name)
    if name in ("ClipTokens", "write_token_shards"):
        from components.tokens import shards

        return getattr(shards, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ClipTokens", "TokenClip", "TokenDataset", "write_token_shards"]
