"""RLAIF: Lyra post-trained with feedback from a reward model (GRPO through TRL)."""

from orchestration.stage_assets import stage_assets_for_group

assets = stage_assets_for_group("rlaif")
