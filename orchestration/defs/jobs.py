"""Jobs, one per `job` of components/pipeline.py's stages.

    lifecycle  every stage from the demo corpus to Lyra samples (`lyra demo`, the sensor)
    scaling    the scaling-law sweep (`lyra demo --job scaling`): minutes of extra training that a
               team runs when sizing a model, not on every data change; it reads the token shards
               the lifecycle built and does not rebuild them
"""

import dagster as dg

from components.pipeline import job_stages

# Stages are separate processes already, so running steps in-process (one after the other)
# costs nothing in parallelism on a laptop and saves a Python start-up per step.
JOB_DESCRIPTIONS = {
    "lifecycle": "Every stage from the demo corpus to Lyra samples, skipping stages DVC reports unchanged.",
    "scaling": "Scaling laws: sweep small Lyra runs, fit L(N, D), recommend a size per FLOP budget (reuses unchanged runs).",
}


def job_selection(job: str) -> dg.AssetSelection:
    return dg.AssetSelection.assets(*[s.name for s in job_stages(job)])


lifecycle_job = dg.define_asset_job("lifecycle", selection=job_selection("lifecycle"),
                                    executor_def=dg.in_process_executor, description=JOB_DESCRIPTIONS["lifecycle"])
scaling_job = dg.define_asset_job("scaling", selection=job_selection("scaling"),
                                  executor_def=dg.in_process_executor, description=JOB_DESCRIPTIONS["scaling"])
