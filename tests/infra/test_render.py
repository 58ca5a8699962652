"""The render command prints what the cluster would get; the DeepSpeed configs in infra/ are
the ones `lyra lm train` builds for each profile (a test fails when they drift)."""

import json

import yaml

from orchestration.k8s.__main__ import DEEPSPEED_DIR, deepspeed_configs, main


def test_render_writes_every_stage_validated(tmp_path, capsys):
    assert main(["render", "--profile", "cluster", "--out", str(tmp_path)]) == 0
    docs = list(yaml.safe_load_all((tmp_path / "stages-cluster.yaml").read_text()))
    assert [d["kind"] for d in docs].count("TrainJob") == 1
    assert all(list(d)[:2] == ["apiVersion", "kind"] for d in docs)


def test_committed_deepspeed_configs_match_what_training_builds():
    for profile, cfg in deepspeed_configs().items():
        assert json.loads((DEEPSPEED_DIR / f"{profile}.json").read_text()) == cfg, \
            f"infra/deepspeed/{profile}.json is stale: run `python -m orchestration.k8s deepspeed`"
    assert deepspeed_configs()["cluster"]["zero_optimization"]["stage"] == 2
    assert deepspeed_configs()["cluster"]["bf16"]["enabled"] is True


def test_the_image_matches_the_table_and_the_lock():
    """The Dockerfile's user, working directory and torch are what the specs and the lock assume."""
    from orchestration.k8s.table import REPO_ROOT, default_table

    docker = (REPO_ROOT / "infra" / "Dockerfile").read_text()
    table = default_table()
    assert f"USER {table.run_as_user}" in docker
    assert f"WORKDIR {table.working_dir}" in docker
    lock = (REPO_ROOT / "requirements.lock").read_text()
    torch_pin = next(line for line in lock.splitlines() if line.startswith("torch=="))
    assert torch_pin.split("+")[0] in docker               # the same version, CUDA build
    assert "grep -v '^torch==' requirements.lock" in docker  # and the lock's CPU build is not installed over it
    assert table.data_volume.mount == f"{table.working_dir}/data"   # stages write data/... under the working dir
