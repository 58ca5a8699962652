"""Everything Dagster loads, one module per concern (read it like a table of contents):

    assets/         stages.py: one asset per declared stage (components/<package>/declaration.py);
                    registry.py: one registry version asset per model
    asset_checks.py the stages' declared data checks and gates (blocking checks stop downstream assets)
    resources.py    launcher + DVC, chosen per deployment (LYRA_DEPLOYMENT=local|k8s)
    jobs.py         the lifecycle job (+ every registry version); the scaling-law sweep's own job; the
                    promotion job (`lyra promote` from Dagster); `<model>_to_registry` jobs
    schedules.py    periodic retraining (the lifecycle; unchanged stages are no-ops)
    sensors.py      re-run the lifecycle when DVC sees stale stages or new raw audio lands
"""
