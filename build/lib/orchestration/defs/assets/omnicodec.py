"""OmniCodec: train the neural audio codec, then evaluate it on held-out pieces."""

from orchestration.stage_assets import stage_assets_for_group

assets = stage_assets_for_group("omnicodec")
