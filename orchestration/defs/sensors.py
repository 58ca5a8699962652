"""Re-run the lifecycle when what it is built from changes.

Every few minutes the sensor asks DVC which stages are stale (new or changed audio, params,
code). If any is, it requests one lifecycle run keyed by the staleness fingerprint, so the
same change never triggers twice; in that run, unchanged stages are no-ops.
"""

import hashlib
import json

import dagster as dg

from components.pipeline import job_stages
from orchestration.defs.jobs import lifecycle_job
from orchestration.dvc import DvcResource


@dg.sensor(job=lifecycle_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED)
def stale_data_sensor(context: dg.SensorEvaluationContext, dvc: DvcResource):
    lifecycle = {s.name for s in job_stages("lifecycle")}     # the scaling sweep is run on request only
    stale = {name: why for name, why in dvc.stale_stages().items() if name in lifecycle}
    if not stale:
        return dg.SkipReason("every stage is up to date (dvc status)")
    fingerprint = hashlib.sha1(json.dumps(stale, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return dg.RunRequest(run_key=f"stale-{fingerprint}", tags={"lyra/stale_stages": ",".join(sorted(stale))})
