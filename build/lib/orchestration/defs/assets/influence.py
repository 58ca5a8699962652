"""Influence: the post-trained Lyra fine-tuned (LoRA) with a reference-song conditioner."""

from orchestration.stage_assets import stage_assets_for_group

assets = stage_assets_for_group("influence")
