"""Scaling laws: a sweep of small Lyra runs, a fitted L(N, D), compute-optimal sizes (job `scaling`)."""

from orchestration.stage_assets import stage_assets_for_group

assets = stage_assets_for_group("scaling")
