"""Curation: any folder of audio -> clips + manifest + quarantine (nothing is lost)."""

from orchestration.stage_assets import stage_assets_for_group

assets = stage_assets_for_group("curation")
