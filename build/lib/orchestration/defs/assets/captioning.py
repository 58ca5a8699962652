"""Captioning: tags from metadata and audio -> varied captions + sentence embeddings."""

from orchestration.stage_assets import stage_assets_for_group

assets = stage_assets_for_group("captioning")
