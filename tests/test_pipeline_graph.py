"""One source of truth: dvc.yaml and the Dagster asset graph must both match components/pipeline.py."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.pipeline import STAGES, render_dvc_yaml, upstream

REPO = Path(__file__).resolve().parents[1]


def test_committed_dvc_yaml_is_generated_from_the_stage_table():
    assert (REPO / "dvc.yaml").read_text() == render_dvc_yaml(yaml.safe_load((REPO / "params.yaml").read_text())), \
        "dvc.yaml is stale: run `make dvc-yaml`"


def test_dvc_reads_the_same_stages():
    dvc = Path(sys.executable).parent / "dvc"
    out = subprocess.run([str(dvc), "stage", "list", "--name-only"], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [s.name for s in STAGES]


def test_dagster_asset_graph_matches_the_stage_table():
    from orchestration.definitions import defs

    from orchestration.defs.assets.registry import registered_models

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    # one asset per stage, one partitioned `<stage>_part` per fanned-out stage, plus one registry version asset
    # per registered model (params.yaml registry.models)
    parts = {f"{s.name}_part" for s in STAGES if s.part_argv}
    assert parts == {"curated_clips_part", "captions_part", "token_shards_part"}
    assert keys == {s.name for s in STAGES} | parts | {f"registry/{m}" for m in registered_models()}
    for stage in STAGES:
        node = graph.get(dg_key(stage.name))
        own_part = {f"{stage.name}_part"} & parts
        # a stage does not depend on its part asset (a cache, made only when the profile fans out)
        assert {p.to_user_string() for p in node.parent_keys} == {u.name for u in upstream(stage)}, stage.name
        assert node.group_name == stage.group
        assert node.code_version
        if own_part:
            part = graph.get(dg_key(f"{stage.name}_part"))
            assert {p.to_user_string() for p in part.parent_keys} == {u.name for u in upstream(stage)}
            assert part.partitions_def is not None and part.pools == {"lyra_fanout"}
            assert part.code_version == node.code_version


def dg_key(name):
    import dagster as dg

    return dg.AssetKey(name)


def test_stage_outputs_do_not_overlap_and_every_dep_has_a_producer_or_is_raw():
    outs = [o for s in STAGES for o in s.outs]
    assert len(outs) == len(set(outs))
    for a in outs:
        for b in outs:
            assert a == b or not a.startswith(b.rstrip("/") + "/"), (a, b)
    for stage in STAGES:
        for dep in stage.deps:
            assert any(dep == o or dep.startswith(o + "/") for o in outs), f"{stage.name} reads {dep}, which no stage writes"


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_every_stage_command_exists_in_the_cli(stage):
    from components.cli import COMMANDS

    assert stage.argv[0] in COMMANDS


@pytest.mark.parametrize("profile", ["tiny", "gpu", "cluster"])
@pytest.mark.parametrize("stage", [s for s in STAGES if s.config], ids=lambda s: s.name)
def test_params_sections_validate_against_the_stage_config(stage, profile):
    from components.config import load_stage_config

    load_stage_config(stage.params, stage.config_class(), params_path=REPO / "params.yaml", profile=profile)


def test_a_stage_tracks_only_the_active_profile_and_the_base_it_extends():
    from components.config import PROFILES

    doc = yaml.safe_load(render_dvc_yaml(yaml.safe_load((REPO / "params.yaml").read_text())))
    for stage in STAGES:
        assert doc["stages"][stage.name]["params"] == ["profile"] + [
            key for section in (stage.params, *stage.extra_params) for key in (f"tiny.{section}", f"${{profile}}.{section}")]
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for stage in STAGES:               # DVC resolves ${profile}.<section>: every profile must have the section
        for profile in PROFILES:
            assert stage.params in (params.get(profile) or {}), f"profile {profile} has no {stage.params} section"


def test_the_longest_chain_after_pretraining_starts_first():
    """Ready steps start by priority: ORAQL -> RLAIF before the stages with slack."""
    from orchestration.definitions import defs

    by_name = {s.name: s for s in STAGES}
    after_pretraining = [s for s in STAGES if "lyra_pretrain" in {u.name for u in upstream(s)}]
    chain = {"oraql", "lyra_rlaif"}
    assert min(by_name[n].priority for n in chain) > max(s.priority for s in after_pretraining if s.name not in chain)
    assert by_name["lyra_pretrain"].priority > by_name["conditioning_judge"].priority   # both wait on the shards

    job = defs.resolve_job_def("lifecycle")
    for stage in STAGES:
        if stage.job == "lifecycle":
            assert job.graph.node_named(stage.name).tags.get("dagster/priority") == str(stage.priority), stage.name


def test_editing_the_product_command_or_the_registry_reruns_no_stage():
    """`lyra generate` (components/generate/) and the registry sit above the models: no stage imports them,
    so editing either (e.g. the registry's HTML report) leaves every stage up to date."""
    for stage in STAGES:
        above = [p for p in stage.code_paths if p.startswith(("components/generate/", "components/registry/"))]
        assert above == [], (stage.name, above)
