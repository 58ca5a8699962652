"""Token shards: the curated corpus encoded once with OmniCodec, so LM training never decodes audio.

    <out>/
      meta.json                 codec facts (K, codebook size, frame rate), dtype, shard plan
      index.parquet             one row per clip: where its codes live + caption + timing + split
      text_embeddings.npy       float16 [n_clips, n_phrasings, D], row = index.text_row
      shards/shard-00000.npy    int16 [n_frames_in_shard, K], clips back to back (frame-major)

`TokenDataset` memory-maps the shards: reading a window is a slice, not a decode.
"""

from components.tokens.dataset import TokenClip, TokenDataset
from components.tokens.shards import ClipTokens, write_token_shards

__all__ = ["ClipTokens", "TokenClip", "TokenDataset", "write_token_shards"]
