"""The sweep is its own Dagster job: `lyra demo` (the lifecycle) never trains it, `--job scaling` does."""

from components.pipeline import STAGES, job_stages, stage_by_name


def test_the_scaling_stage_is_outside_the_lifecycle_job():
    import dagster as dg

    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    lifecycle = {k.to_user_string() for k in defs.resolve_job_def("lifecycle").asset_layer.selected_asset_keys}
    scaling = {k.to_user_string() for k in defs.resolve_job_def("scaling").asset_layer.selected_asset_keys}
    assert scaling == {"lyra_scaling"}
    stages = {name for name in lifecycle if not name.startswith("registry/")}      # + every model's registry version
    assert stages == {s.name for s in STAGES} - {"lyra_scaling"} == {s.name for s in job_stages("lifecycle")}
    # it reads the lifecycle's token shards (an upstream asset) and its check rides along with it
    assert {p.to_user_string() for p in graph.get(dg.AssetKey("lyra_scaling")).parent_keys} == {"token_shards"}
    assert stage_by_name("lyra_scaling").job == "scaling"
    checks = {c.name for c in defs.resolve_job_def("scaling").asset_layer.asset_graph.asset_check_keys}
    assert "scaling_law_predicts_the_held_out_run" in checks


def test_the_stale_sensor_ignores_the_scaling_stage():
    import dagster as dg

    from orchestration.defs.sensors import stale_data_sensor

    class FakeDvc:
        def __init__(self, stale):
            self.stale = stale

        def stale_stages(self):
            return self.stale

    ctx = dg.build_sensor_context()
    assert isinstance(stale_data_sensor(ctx, dvc=FakeDvc({"lyra_scaling": ["never run"]})), dg.SkipReason)
    request = stale_data_sensor(ctx, dvc=FakeDvc({"lyra_scaling": ["x"], "lyra_pretrain": ["params"]}))
    assert request.tags["lyra/stale_stages"] == "lyra_pretrain"
