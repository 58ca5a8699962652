"""One asset per declared stage (components/<package>/declaration.py), grouped by the package that
declares it: corpus, curation, captioning, omnicodec, tokens, judge, lyra, rlaif, influence, oraql,
scaling. A new stage's package appears here with nothing to add. A stage with a per-partition command
(Stage.part_argv) also gets `<stage>_part`, partitioned over the corpus listing."""

from components.pipeline import STAGES
from orchestration.stage_assets import part_asset, stage_asset

assets = [stage_asset(stage) for stage in STAGES]
# curation, captioning and token encoding per partition of the corpus listing (orchestration/fanout.py)
part_assets = [part_asset(stage) for stage in STAGES if stage.part_argv]
