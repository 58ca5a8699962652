"""Jobs: the whole lifecycle in dependency order."""

import dagster as dg

# Stages are separate processes already, so running steps in-process (one after the other)
# costs nothing in parallelism on a laptop and saves a Python start-up per step.
lifecycle_job = dg.define_asset_job(
    "lifecycle",
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    description="Every stage from the demo corpus to Lyra samples, skipping stages DVC reports unchanged.",
)
