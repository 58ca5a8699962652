"""Token shards: the curated corpus encoded once with OmniCodec."""

from orchestration.stage_assets import stage_assets_for_group

assets = stage_assets_for_group("tokens")
