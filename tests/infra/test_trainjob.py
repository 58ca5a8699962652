"""Lyra pretraining as a Kubeflow TrainJob: the job's exact command runs as 2 nodes (one rank each)
with the environment the torch-distributed runtime injects (PET_*; gloo on 127.0.0.1), through the
k8s launcher's Pipes TrainJob client against the stand-in API server; it trains, rank 0 reports."""

import json
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

import orchestration.stage_assets as stage_assets
from components.pipeline import stage_by_name
from orchestration.dvc import DvcResource
from orchestration.k8s.launcher import K8sLauncher
from orchestration.k8s.table import REPO_ROOT, TABLE_PATH
from orchestration.stage_assets import stage_asset
from tests.infra.fake_kube import FakeCluster, write_kubeconfig
from tests.lyra.synthetic import write_synthetic_tokens

# the cluster profile's lm section, shrunk to seconds (every key the cluster block sets)
TINY = ["model.dim=64", "model.n_layers=2", "model.n_heads=2", "model.window_frames=16", "model.n_text_tokens=1",
        "model.max_seconds=10.0", "model.dropout=0.0", "nproc=1", "zero_stage=1", "micro_batch=8", "grad_accum=1",
        "steps=40", "lr=0.003", "min_lr=0.0003", "warmup_steps=5", "eval_every=20", "eval_windows=16",
        "checkpoint_every=20", "log_every=10", "precision=fp32"]


def torch_extensions_root() -> Path:
    """Where this machine's DeepSpeed CPU ops were JIT-built (make install builds them once)."""
    from torch.utils.cpp_extension import get_default_build_root

    return Path(get_default_build_root())


@pytest.mark.slow
def test_the_trainjob_trains_on_two_ranks_and_rank_0_reports(tmp_path, monkeypatch):
    claim = tmp_path / "claim"
    write_synthetic_tokens(claim / "tokens")
    (tmp_path / "kubelet").mkdir()
    fake = FakeCluster(tmp_path / "kubelet", claims={"lyra-data": claim},
                       secrets={"lyra-s3": {"access-key-id": "lyra", "secret-access-key": "s3cr3t"}},
                       image_env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
                       image_root=REPO_ROOT, seed={"cache": {"torch_extensions": torch_extensions_root()}})
    server, url = fake.serve()
    # the code location sees the data volume where the repository keeps data/ (as in the cluster)
    root = tmp_path / "code-location"
    root.mkdir()
    (root / "data").symlink_to(claim)
    (root / "params.yaml").symlink_to(REPO_ROOT / "params.yaml")
    monkeypatch.setattr(stage_assets, "REPO_ROOT", root)
    try:
        stage = stage_by_name("lyra_pretrain")
        table = yaml.safe_load(TABLE_PATH.read_text())
        table["stages"]["lyra_pretrain"]["train_job"]["num_nodes"] = 2
        (tmp_path / "stages.yaml").write_text(yaml.safe_dump(table))
        launcher = K8sLauncher(profile="cluster", kubeconfig_file=str(write_kubeconfig(tmp_path / "kubeconfig", url)),
                               table_path=str(tmp_path / "stages.yaml"), poll_interval=0.2, overrides=TINY)
        instance = dg.DagsterInstance.ephemeral()
        result = dg.materialize([stage_asset(stage)], instance=instance, raise_on_error=False,
                                resources={"launcher": launcher, "dvc": DvcResource(enabled=False)})
        logs = [e.user_message for e in instance.all_logs(result.run_id)]
        assert result.success, "\n".join(logs[-30:])
    finally:
        fake.shutdown()
        server.shutdown()

    # two nodes, one rank each, running the TrainJob's command with the runtime's variables
    node0, node1 = fake.created
    for rank, pod in enumerate((node0, node1)):
        [c] = pod["spec"]["containers"]
        assert c["command"][:3] == ["torchrun", "--no-python", "lyra"] and c["command"][3:5] == ["lm", "train"]
    metrics = json.loads((claim / "metrics" / "lyra_pretrain.json").read_text())
    assert metrics["world_size"] == 2
    history = json.loads((claim / "models" / "lyra" / "training.json").read_text())["history"]["train"]
    assert history[-1][1] < history[0][1] - 0.5          # it learned
    [mat] = result.asset_materializations_for_node("lyra_pretrain")
    assert mat.metadata["world_size"].value == 2          # reported once, by rank 0, through Pipes
    assert any("rank 0" in m and "streaming" in m for m in logs)
    assert fake.trainjobs == {} and fake.pods == {}       # the TrainJob was deleted with its pods


# Stands in for the trainer command: node 1 dies of SIGKILL (the OOM killer) on the first attempt;
# node 0 reports through Pipes (as global rank 0 does) once node 1 has checked in.
NODE_SCRIPT = """
import os, signal, sys, time
from pathlib import Path
from dagster_pipes import open_dagster_pipes
rank, data = int(os.environ["PET_NODE_RANK"]), Path("data")
attempt = data / f"attempts-{rank}"
n = int(attempt.read_text()) + 1 if attempt.exists() else 1
attempt.write_text(str(n))
if rank == 1:
    time.sleep(0.5)
    if n == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    (data / "node1-done").write_text("ok")
    sys.exit(0)
with open_dagster_pipes() as pipes:
    pipes.log.info(f"rank 0, attempt {n}, nodes {os.environ['PET_NNODES']}")
    while not (data / "node1-done").exists():
        time.sleep(0.1)
    (data / "models" / "lyra").mkdir(parents=True, exist_ok=True)
    pipes.report_asset_materialization(metadata={"attempt": n})
"""


def test_a_trainjob_whose_node_is_oomkilled_is_recreated_with_more_memory(tmp_path, monkeypatch):
    import orchestration.k8s.specs as specs

    claim = tmp_path / "claim"
    claim.mkdir()
    script = tmp_path / "node.py"
    script.write_text(NODE_SCRIPT)
    monkeypatch.setattr(specs, "train_job_command", lambda stage, overrides=(): [sys.executable, str(script)])
    (tmp_path / "kubelet").mkdir()
    fake = FakeCluster(tmp_path / "kubelet", claims={"lyra-data": claim},
                       secrets={"lyra-s3": {"access-key-id": "lyra", "secret-access-key": "s3cr3t"}},
                       image_env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"})
    server, url = fake.serve()
    root = tmp_path / "code-location"
    root.mkdir()
    (root / "data").symlink_to(claim)
    (root / "params.yaml").symlink_to(REPO_ROOT / "params.yaml")
    monkeypatch.setattr(stage_assets, "REPO_ROOT", root)
    table = yaml.safe_load(TABLE_PATH.read_text())
    table["stages"]["lyra_pretrain"]["train_job"]["num_nodes"] = 2
    (tmp_path / "stages.yaml").write_text(yaml.safe_dump(table))
    try:
        launcher = K8sLauncher(profile="cluster", kubeconfig_file=str(write_kubeconfig(tmp_path / "kubeconfig", url)),
                               table_path=str(tmp_path / "stages.yaml"), poll_interval=0.1)
        instance = dg.DagsterInstance.ephemeral()
        result = dg.materialize([stage_asset(stage_by_name("lyra_pretrain"))], instance=instance, raise_on_error=False,
                                resources={"launcher": launcher, "dvc": DvcResource(enabled=False)})
        logs = [e.user_message for e in instance.all_logs(result.run_id)]
        assert result.success, "\n".join(logs[-20:])
    finally:
        fake.shutdown()
        server.shutdown()
    [mat] = result.asset_materializations_for_node("lyra_pretrain")
    assert mat.metadata["attempt"].value == 2
    assert any("OOMKilled" in m and "starting attempt 2" in m for m in logs)
    first, second = ([p for p in fake.created if p["metadata"]["name"].endswith(f"-{a}-node-0-0")] for a in (1, 2))
    limit = lambda pods: pods[0]["spec"]["containers"][0]["resources"]["limits"]["memory"]
    assert limit(first) == "480Gi" and limit(second) == "737281Mi"   # 1.5x, as request and limit
    assert fake.trainjobs == {} and fake.pods == {}                    # both jobs deleted with their pods
