"""Everything Dagster loads, one module per concern (read it like a table of contents):

    assets/         one module per lifecycle group, each asset built from a pipeline stage
    asset_checks.py data-quality and promotion gates (blocking checks stop downstream assets)
    resources.py    launcher + DVC, chosen per deployment (LYRA_DEPLOYMENT=local|k8s)
    jobs.py         the lifecycle job, and the scaling-law sweep's own job
    sensors.py      re-run the lifecycle when the raw audio changes
"""
