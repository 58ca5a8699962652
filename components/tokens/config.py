"""Typed config of the token-shard stage (params.yaml section `tokens`)."""

from __future__ import annotations

from pydantic import Field

from components.config import StageConfig


class TokensConfig(StageConfig):
    # 32 clips of 10 s = 320 s = 16k frames x 4 codebooks x 2 bytes = 128 KB per shard on tiny;
    # the cluster profile uses ~4096 clips (~11 h of audio, ~16 MB) per shard.
    clips_per_shard: int = Field(32, ge=1)
    workers: int = Field(1, ge=1)               # shards encoded in parallel, one process each
    batch_size: int = Field(8, ge=1)            # clips of equal length encoded together
    n_quantizers: int | None = Field(None, ge=1)  # None: every codebook of the codec
    device: str = "cpu"
    reuse_unchanged_shards: bool = True         # unchanged shards are kept and unchanged clips' codes reused, not re-encoded
