"""The registry in Dagster: version assets, the promotion job, the retraining schedule and the raw-audio sensor."""

import dagster as dg

from orchestration.registry import RegistryResource
from tests.registry.conftest import project  # noqa: F401  (fixture)


def run_promotion(project, **config):
    from orchestration.defs.jobs import promote_job

    return promote_job.execute_in_process(
        run_config={"ops": {"promote_model": {"config": config}}},
        resources={"registry": RegistryResource(repo=str(project.root))},
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


def test_the_promotion_job_promotes_and_refuses_like_the_cli(project):
    project.train_codec(seed=0, valid_mel_distance=0.9)
    project.registry().register("omnicodec")
    ok = run_promotion(project, model="omnicodec", version="v0.0.1", to_stage="staging", reason="first", actor="ui-user")
    assert ok.success and ok.output_for_node("promote_model")["outcome"] == "promoted"

    project.train_codec(seed=1, valid_mel_distance=1.3)
    project.registry().register("omnicodec")
    refused = run_promotion(project, model="omnicodec", reason="newer is better?")        # latest -> staging
    assert not refused.success
    failure = next(e for e in refused.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.event_specific_data.error.message
    assert "promotion refused by gate no_regression" in message and "1.3 vs holder 0.9" in message
    assert project.registry().holder("omnicodec", "staging") == "v0.0.1"
    assert project.registry().audit()[-1]["outcome"] == "refused"     # recorded outside the Dagster instance


def test_a_registry_asset_registers_new_weights_once_and_links_its_report(project):
    from orchestration.defs.assets.registry import registered_models, registry_asset

    project.train_codec(seed=0, valid_mel_distance=0.9)
    asset = registry_asset("omnicodec", registered_models()["omnicodec"], known=set())
    resources = {"registry": RegistryResource(repo=str(project.root))}

    def materialize():
        result = dg.materialize([asset], resources=resources, instance=dg.DagsterInstance.ephemeral())
        return result.asset_materializations_for_node(asset.op.name)[0].metadata

    first = materialize()
    assert first["version"].value == "v0.0.1" and first["registered"].value is True
    report = first["report"].value
    # served over HTTP by `lyra serve` (params serve.host/port): the UI cannot open file:// links
    assert report == "http://127.0.0.1:8765/reports/omnicodec/v0.0.1/index.html"
    assert first["artifact_files"].value == ["config.json", "model.safetensors"]
    again = materialize()                                     # nothing changed: no new version, no commit
    assert again["version"].value == "v0.0.1" and again["registered"].value is False


def test_the_raw_audio_sensor_fires_once_per_change_from_curation_down(tmp_path):
    from orchestration.defs.sensors import raw_audio_sensor_for

    folder = tmp_path / "audio"
    folder.mkdir()
    (folder / "a.wav").write_bytes(b"RIFF....")
    sensor = raw_audio_sensor_for(str(folder), name="test_raw_audio")

    first = sensor.evaluate_tick(dg.build_sensor_context(cursor=None))
    assert not first.run_requests and "watching 1 files" in first.skip_message
    unchanged = sensor.evaluate_tick(dg.build_sensor_context(cursor=first.cursor))
    assert not unchanged.run_requests

    (folder / "new piece.flac").write_bytes(b"fLaC....")
    landed = sensor.evaluate_tick(dg.build_sensor_context(cursor=first.cursor))
    (request,) = landed.run_requests
    keys = {k.to_user_string() for k in request.asset_selection}
    assert "curated_clips" in keys and "corpus" not in keys and "registry/lyra" in keys
    assert request.run_key.startswith("raw-audio-") and request.tags["lyra/raw_audio_files"] == "2"
    assert not sensor.evaluate_tick(dg.build_sensor_context(cursor=landed.cursor)).run_requests


def test_with_a_library_as_the_source_the_sensor_watches_it_and_starts_at_the_corpus_stage(tmp_path, monkeypatch):
    import dagster as dg

    from orchestration.defs.sensors import RAW_AUDIO, raw_audio_sensor_for, watched_audio

    monkeypatch.delenv("LYRA_PROFILE", raising=False)
    params = tmp_path / "params.yaml"
    params.write_text("profile: tiny\ntiny: {}\n")
    assert watched_audio(params) == (RAW_AUDIO, "curated_clips")          # the demo corpus: from curation
    library = tmp_path / "library"
    library.mkdir()
    (library / "a.flac").write_bytes(b"fLaC....")
    params.write_text(f"profile: tiny\ntiny: {{corpus: {{source: '{library}'}}}}\n")
    folder, first = watched_audio(params)
    assert (folder, first) == (str(library.resolve()), "corpus")
    sensor = raw_audio_sensor_for(folder, name="test_library", first=first)
    seen = sensor.evaluate_tick(dg.build_sensor_context(cursor=None))
    (library / "b.ogg").write_bytes(b"OggS....")
    (request,) = sensor.evaluate_tick(dg.build_sensor_context(cursor=seen.cursor)).run_requests
    keys = {k.to_user_string() for k in request.asset_selection}
    assert {"corpus", "curated_clips", "registry/lyra"} <= keys


def test_no_named_job_selects_a_partitioned_asset():
    """`Materialize all` on a job page must launch a run: a partitioned `<stage>_part` asset in a job of whole stages
    would ask for a partition instead (the UI test caught omnicodec_to_registry doing that)."""
    from orchestration.definitions import defs

    for job in defs.resolve_all_job_defs():
        if job.name.startswith("__"):
            continue
        assert job.partitions_def is None, job.name
        assert not [k for k in job.asset_layer.selected_asset_keys if k.path[-1].endswith("_part")], job.name


def test_the_retraining_schedule_runs_the_lifecycle_job():
    from orchestration.definitions import defs

    schedule = defs.resolve_schedule_def("retrain_weekly")
    assert schedule.job_name == "lifecycle" and schedule.cron_schedule == "0 3 * * 1"
    registry_keys = {k for k in defs.resolve_job_def("lifecycle").asset_layer.asset_graph.get_all_asset_keys()
                     if k.path[0] == "registry"}
    assert {k.path[1] for k in registry_keys} == {"omnicodec", "lyra", "oraql", "lyra_rlaif", "lyra_influence"}


def test_the_codec_gate_remembers_the_production_codec_through_the_registry(project, monkeypatch):
    """A fresh Dagster instance has no gate history; the registry still knows what production holds."""
    from components.omnicodec.gates import codec_gate_decisions
    from components.registry.promote import promote
    from orchestration.defs import asset_checks
    from tests.registry.conftest import CODEC_EVAL

    monkeypatch.setattr(asset_checks, "REPO_ROOT", project.root)
    project.train_codec(seed=0, valid_mel_distance=0.9)
    reg = project.registry()
    reg.register("omnicodec")
    for stage in ("staging", "production"):
        promote(reg, "omnicodec", "v0.0.1", stage, "tests", actor="ci")
    same_clips = asset_checks._eval_set_digest(CODEC_EVAL)
    assert asset_checks._registered_codec(same_clips) is None        # the folder holds production's codec itself

    project.train_codec(seed=1, valid_mel_distance=0.9)                # a new codec under test
    previous = asset_checks._registered_codec(same_clips)
    assert previous == {"visqol": CODEC_EVAL["visqol"], "codec_digest": "omnicodec@v0.0.1 (production)"}
    assert asset_checks._registered_codec("other clips") is None
    assert codec_gate_decisions({**CODEC_EVAL, "visqol": 3.0}, previous)[
        "no_regression_on_previous_version"] is False
