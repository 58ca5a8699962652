"""Votes close the loop: after `listening.retrain_after` new judgements the listeners sensor exports ORAQL's tables
and runs ORAQL and what reads it, once per batch of judgements; ORAQL's configured table is a DVC dependency."""

from __future__ import annotations

import csv

import dagster as dg
import yaml

from components.listening.votes import VoteStore
from tests.listening.test_listening import simulated_listeners


def project_with_votes(tmp_path, point_oraql_at_export: bool):
    raw = {"profile": "tiny", "tiny": {"listening": {"retrain_after": 10, "database": "votes.sqlite", "audio_dir": "audio"}}}
    if point_oraql_at_export:
        raw["tiny"]["oraql"] = {"pairwise": "data/listening/export/pairwise.csv"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    (tmp_path / "audio").mkdir()
    return VoteStore.open("votes.sqlite", tmp_path)


def test_the_sensor_exports_and_retrains_oraql_once_per_batch_of_judgements(tmp_path):
    from components.oraql.ratings import read_pairwise
    from orchestration.defs.sensors import listeners_sensor_for

    store = project_with_votes(tmp_path, point_oraql_at_export=True)
    sensor = listeners_sensor_for(tmp_path, name="test_listeners")
    simulated_listeners(store, tmp_path / "audio", "lyra@v0.0.2", "lyra@v0.0.1", 6, p_candidate=0.8)
    few = sensor.evaluate_tick(dg.build_sensor_context(cursor=None))
    assert not few.run_requests and "6 new judgement(s); ORAQL is retrained after 10" in few.skip_message

    simulated_listeners(store, tmp_path / "audio", "lyra@v0.0.2", "lyra@v0.0.1", 6, p_candidate=0.8, seed=1)
    fired = sensor.evaluate_tick(dg.build_sensor_context(cursor=None))
    (request,) = fired.run_requests
    keys = {k.to_user_string() for k in request.asset_selection}
    assert "oraql" in keys and "lyra_rlaif" in keys and "registry/oraql" in keys and "lyra_pretrain" not in keys
    table = tmp_path / "data" / "listening" / "export" / "pairwise.csv"
    assert len(list(csv.DictReader(table.open()))) == 12 and len(read_pairwise(table)) == 12
    again = sensor.evaluate_tick(dg.build_sensor_context(cursor=fired.cursor))
    assert not again.run_requests                                      # the same judgements never retrain twice


def test_the_sensor_says_why_it_waits_when_oraql_does_not_read_the_export(tmp_path):
    from orchestration.defs.sensors import listeners_sensor_for

    store = project_with_votes(tmp_path, point_oraql_at_export=False)
    simulated_listeners(store, tmp_path / "audio", "lyra@v0.0.2", "lyra@v0.0.1", 10, p_candidate=0.8)
    tick = listeners_sensor_for(tmp_path, name="test_listeners").evaluate_tick(dg.build_sensor_context(cursor=None))
    assert not tick.run_requests and "set params.yaml oraql.pairwise: data/listening/export/pairwise.csv" in tick.skip_message


def test_a_configured_ratings_table_is_a_dependency_of_oraql():
    from components.pipeline import dvc_pipeline, load_params

    params = load_params()
    assert "data/listening/export/pairwise.csv" not in dvc_pipeline(params)["stages"]["oraql"]["deps"]
    params["tiny"]["oraql"]["pairwise"] = "data/listening/export/pairwise.csv"
    assert "data/listening/export/pairwise.csv" in dvc_pipeline(params)["stages"]["oraql"]["deps"]
