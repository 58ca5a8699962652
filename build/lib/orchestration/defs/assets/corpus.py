"""The offline demo corpus: music21 scores rendered under several GM instruments."""

from orchestration.stage_assets import stage_assets_for_group

assets = stage_assets_for_group("corpus")
