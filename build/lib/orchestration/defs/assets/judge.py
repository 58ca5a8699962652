"""The conditioning judge: an audio classifier trained apart from Lyra, on real music only."""

from orchestration.stage_assets import stage_assets_for_group

assets = stage_assets_for_group("judge")
