"""Periodic retraining: the lifecycle job on a cron schedule.

Every stage asks DVC first and re-runs only when its inputs, params or code changed, and the registry
registers only new weights, so a run on unchanged data is a no-op from end to end. Started with
LYRA_AUTOMATION=on (or switched on in the UI / `dagster schedule start retrain_weekly`).
"""

import os

import dagster as dg

from orchestration.defs.jobs import lifecycle_job

AUTOMATION = dg.DefaultScheduleStatus.RUNNING if os.environ.get("LYRA_AUTOMATION") == "on" \
    else dg.DefaultScheduleStatus.STOPPED

retrain_weekly = dg.ScheduleDefinition(
    name="retrain_weekly", job=lifecycle_job, cron_schedule=os.environ.get("LYRA_RETRAIN_CRON", "0 3 * * 1"),
    execution_timezone="UTC", default_status=AUTOMATION,
    description="Re-run the lifecycle (stages DVC reports unchanged are skipped; unchanged weights register nothing)",
)
