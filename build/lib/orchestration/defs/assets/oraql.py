"""ORAQL: the music-quality model (trained on a graded ladder and generations), then best-of-n generation."""

from orchestration.stage_assets import stage_assets_for_group

assets = stage_assets_for_group("oraql")
