"""One asset per declared stage (components/<package>/declaration.py), grouped by the package that
declares it: corpus, curation, captioning, omnicodec, tokens, judge, lyra, rlaif, influence, oraql,
scaling. A new stage's package appears here with nothing to add."""

from components.pipeline import STAGES
from orchestration.stage_assets import stage_asset

assets = [stage_asset(stage) for stage in STAGES]
