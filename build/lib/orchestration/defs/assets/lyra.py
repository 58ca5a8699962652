"""Lyra: pretrain the text-to-music transformer, then generate from held-out captions."""

from orchestration.stage_assets import stage_assets_for_group

assets = stage_assets_for_group("lyra")
