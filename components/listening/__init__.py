"""Listeners' judgements: where they are kept and what they say (no model code, no HTTP).

    votes       the tables: pairs played, which listener was played which pair, one row per judgement
                (SQLite here, the cluster's PostgreSQL there)
    statistics  candidate preferred over holder (exact one-sided bound), P(liked) per best-of-n, its ratio
    export      the judgements as ORAQL's ratings / A/B import tables
    report      the same figures as an HTML page
    cli         `lyra listen tally | export`

`lyra serve` (components/serving/) plays the pairs and records the votes here; the registry's
`listeners_prefer` gate and the listeners sensor read them, without importing the service.
"""
