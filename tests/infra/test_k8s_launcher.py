"""The k8s launcher through PipesK8sClient.run against a stand-in API server that runs each pod's
exact command and environment locally: messages reach Dagster, an OOMKilled pod is retried with
more memory and resumes, an application error fails once, pods are deleted, a queued pod is not
timed out by the client."""

import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest
from kubernetes import client as k8s

from components.pipeline import Stage
from dagster_k8s.pipes import PipesK8sClient

import orchestration.k8s.launcher as launcher_module
from orchestration.dvc import DvcResource
from orchestration.k8s.launcher import K8sLauncher, PodOutcome, grown_memory, pod_outcome, worst_outcome
from orchestration.stage_assets import stage_asset
from tests.infra.fake_kube import FakeCluster, write_kubeconfig

# A stand-in stage: checkpoints every step on the data volume; `oom` dies of SIGKILL at step 5 on
# its first attempt (what the OOM killer does), `error` exits 3 after its steps.
SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from dagster_pipes import open_dagster_pipes
    mode, data = sys.argv[1], Path("data")          # data/: the shared volume under the working dir
    attempts = data / "attempts"
    n = int(attempts.read_text()) + 1 if attempts.exists() else 1
    attempts.write_text(str(n))
    ckpt = data / ".out.checkpoints" / "step"
    with open_dagster_pipes() as pipes:
        start = int(ckpt.read_text()) if ckpt.exists() else 0
        pipes.log.info(f"attempt {n} starts at step {start}")
        for step in range(start, 10):
            ckpt.parent.mkdir(exist_ok=True)
            ckpt.write_text(str(step + 1))
            if step == 4 and n == 1 and mode == "oom":
                os.kill(os.getpid(), signal.SIGKILL)
            if mode == "slow":                      # long enough for a test to delete or evict the pod mid-run
                import time
                time.sleep(0.4)
        if mode == "error":
            print("something went wrong in the stage", file=sys.stderr)
            sys.exit(3)
        if mode == "quiet":                         # a long silent stretch, as in a big training step
            import time
            time.sleep(3)
            pipes.log.info("still here after the quiet stretch")
        (data / "out").mkdir(exist_ok=True)
        pipes.report_asset_materialization(metadata={
            "attempt": n, "resumed_from": start, "cwd_is_workdir": Path.cwd().name == "workdir",
            "home": os.environ["HOME"], "secret_ok": os.environ.get("AWS_SECRET_ACCESS_KEY") == "s3cr3t"})
""")


class ScriptK8sLauncher(K8sLauncher):
    """The k8s launcher with a test script in place of `lyra ...` (the pod spec is otherwise real)."""

    argv: list[str]

    def command(self, stage):
        return [sys.executable, *self.argv]


@pytest.fixture
def cluster(tmp_path):
    data = tmp_path / "claim"
    data.mkdir()
    image_env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    fake = FakeCluster(tmp_path / "kubelet", claims={"lyra-data": data},
                       secrets={"lyra-s3": {"access-key-id": "lyra", "secret-access-key": "s3cr3t"}},
                       image_env=image_env)
    (tmp_path / "kubelet").mkdir()
    server, url = fake.serve()
    fake.kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
    fake.data = data
    yield fake
    fake.shutdown()
    server.shutdown()


def run_stage(tmp_path: Path, cluster: FakeCluster, mode: str) -> dg.ExecuteInProcessResult:
    script = tmp_path / "stage.py"
    script.write_text(SCRIPT)
    stage = Stage(name="flaky", group="test", description="test stage", argv=(), deps=(),
                  outs=(str(cluster.data / "out"),), params="corpus")
    launcher = ScriptK8sLauncher(argv=[str(script), mode], profile="cluster", kubeconfig_file=str(cluster.kubeconfig),
                                 poll_interval=0.1)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([stage_asset(stage)], resources={"launcher": launcher, "dvc": DvcResource(enabled=False)},
                            raise_on_error=False, instance=instance)
    result.log_messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    return result


def memory_limit(pod: dict) -> str:
    return pod["spec"]["containers"][0]["resources"]["limits"]["memory"]


def test_messages_from_the_pod_reach_dagster_and_the_pod_is_deleted(tmp_path, cluster):
    result = run_stage(tmp_path, cluster, "ok")
    assert result.success
    [mat] = result.asset_materializations_for_node("flaky")
    assert "attempt 1 starts at step 0" in result.log_messages     # a Pipes log message
    assert mat.metadata["attempt"].value == 1
    assert mat.metadata["cwd_is_workdir"].value is True
    assert mat.metadata["secret_ok"].value is True           # from the Secret, by reference
    assert mat.metadata["home"].value.endswith("/volumes/tmp")  # HOME=/tmp, an emptyDir: mapped like a mount
    [pod] = cluster.created
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert "s3cr3t" not in str(pod)
    assert cluster.pods == {} and len(cluster.deleted) == 1


def test_an_oomkilled_pod_is_retried_with_more_memory_and_resumes(tmp_path, cluster):
    result = run_stage(tmp_path, cluster, "oom")
    assert result.success
    [mat] = result.asset_materializations_for_node("flaky")
    assert mat.metadata["attempt"].value == 2
    assert mat.metadata["resumed_from"].value == 5               # the checkpoint of the killed attempt
    first, second = cluster.created
    assert memory_limit(first) == "16Gi" and memory_limit(second) == grown_memory("16Gi", 1.5, None)
    assert second["spec"]["containers"][0]["resources"]["requests"]["memory"] == memory_limit(second)
    assert cluster.pods == {} and len(cluster.deleted) == 2
    assert any("OOMKilled" in m and "starting attempt 2 with memory 24577Mi" in m for m in result.log_messages)


def test_an_application_error_fails_once_without_retry(tmp_path, cluster):
    result = run_stage(tmp_path, cluster, "error")
    assert not result.success
    assert (cluster.data / "attempts").read_text() == "1"
    assert len(cluster.created) == 1 and cluster.pods == {}
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "exited with code 3" in str(failure.event_specific_data.error.message)
    assert "not retried" in str(failure.event_specific_data.error.message)


def test_a_pod_queued_past_dagster_k8s_readiness_limit_still_runs(tmp_path, cluster, monkeypatch):
    import dagster_k8s.pipes

    monkeypatch.setattr(dagster_k8s.pipes, "WAIT_TIMEOUT_FOR_READY", 0.5)   # stands for its 5 h
    cluster.queue_seconds = 2.0                                             # a GPU pod waiting for a node
    assert run_stage(tmp_path, cluster, "ok").success
    # the stock client gives up on the same queued pod
    monkeypatch.setattr(launcher_module, "PatientPipesK8sClient", PipesK8sClient)
    result = run_stage(tmp_path, cluster, "ok")
    assert not result.success
    assert "Timed out while waiting for pod" in result.failure_data_for_node("flaky").error.to_string()


def status(**kw) -> k8s.V1Pod:
    return k8s.V1Pod(status=k8s.V1PodStatus(**kw))


def terminated(code: int, reason: str) -> k8s.V1ContainerStatus:
    return k8s.V1ContainerStatus(name="stage", image="i", image_id="", ready=False, restart_count=0,
                                 state=k8s.V1ContainerState(terminated=k8s.V1ContainerStateTerminated(
                                     exit_code=code, reason=reason)))


@pytest.mark.parametrize("pod, kind", [
    (status(phase="Failed", container_statuses=[terminated(137, "OOMKilled")]), "oom"),
    (status(phase="Failed", reason="Evicted", message="The node was low on resource: memory."), "disrupted"),
    (status(phase="Failed", conditions=[k8s.V1PodCondition(type="DisruptionTarget", status="True",
                                                           reason="PreemptionByScheduler")]), "disrupted"),
    (status(phase="Failed", container_statuses=[terminated(143, "Error")]), "disrupted"),
    (status(phase="Failed", container_statuses=[terminated(1, "Error")]), "error"),
    (status(phase="Succeeded", container_statuses=[terminated(0, "Completed")]), "succeeded"),
    (None, "disrupted"),
])
def test_pod_outcomes(pod, kind):
    assert pod_outcome(pod).kind == kind


def test_a_job_with_an_oom_and_an_error_retries_for_the_oom_only():
    assert worst_outcome([PodOutcome("disrupted", ""), PodOutcome("oom", "")]).kind == "oom"
    assert worst_outcome([PodOutcome("disrupted", ""), PodOutcome("error", "")]).kind == "error"


def test_memory_grows_to_its_ceiling():
    assert grown_memory("16Gi", 1.5, None) == "24577Mi"
    assert grown_memory("800Gi", 1.5, "900Gi") == "921600Mi"


def test_a_cancelled_run_takes_its_pod_along(tmp_path, cluster, monkeypatch):
    """Terminating a run interrupts the step while its pod streams logs: the pod is deleted too."""
    def interrupted(self, **kwargs):
        raise dg.DagsterExecutionInterruptedError()      # what Dagster raises in a step of a terminated run

    monkeypatch.setattr(launcher_module.PipesK8sPodLogsMessageReader, "consume_pod_logs", interrupted)
    result = run_stage(tmp_path, cluster, "ok")
    assert not result.success
    assert len(cluster.created) == 1 and cluster.pods == {} and len(cluster.deleted) == 1


def test_a_client_failure_before_any_pod_exists_is_not_retried(tmp_path, cluster, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("cannot build the pod body")

    import dagster_k8s.pipes

    monkeypatch.setattr(dagster_k8s.pipes, "build_pod_body", broken)     # fails inside PipesK8sClient.run
    result = run_stage(tmp_path, cluster, "ok")
    assert not result.success and cluster.created == []
    assert "cannot build the pod body" in result.failure_data_for_node("flaky").error.to_string()


def test_a_stage_quiet_for_longer_than_the_log_read_timeout_keeps_streaming(tmp_path, cluster, monkeypatch):
    """The pod-log reader times out on silence and reconnects (hourly by default; 1 s here):
    messages from before and after arrive, each once."""
    monkeypatch.setenv("DAGSTER_PIPES_K8S_CONSUME_POD_LOGS_REQUEST_TIMEOUT", "1")
    result = run_stage(tmp_path, cluster, "quiet")
    assert result.success
    assert result.log_messages.count("attempt 1 starts at step 0") == 1
    assert result.log_messages.count("still here after the quiet stretch") == 1
    assert result.asset_materializations_for_node("flaky")[0].metadata["attempt"].value == 1
    follows = [q for q in cluster.log_requests if q.get("follow", "").lower() == "true"]
    assert len(follows) >= 2 and "sinceSeconds" in follows[-1]      # it did reconnect, from where it was


# a fanned-out stand-in stage: `part KEY` writes its partition's output; the whole stage counts what it finds
FANOUT_SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from dagster_pipes import open_dagster_pipes
    with open_dagster_pipes() as pipes:
        parts = Path("data/parts/toy")
        if sys.argv[1:2] == ["part"]:
            (parts / sys.argv[2]).mkdir(parents=True)
            (parts / f"{sys.argv[2]}.metrics.json").write_text(json.dumps({"files_in": 1}))
        else:
            (Path("data") / "out").mkdir()
            found = sorted(p.name for p in parts.iterdir() if p.is_dir())
            pipes.report_asset_materialization(metadata={"found": len(found)})
""")


class FanoutK8sLauncher(K8sLauncher):
    script: str

    def command(self, stage):
        return [sys.executable, self.script, *stage.argv]


def test_each_partition_runs_as_its_own_pod_before_the_whole_stage(tmp_path, cluster, monkeypatch):
    """The lifecycle's fan-out (orchestration/fanout.py) through the k8s launcher: one pod per partition, with
    the stage's pod spec and the partition's command, then the stage's own pod; every pod deleted."""
    from components.partitions import partitions, read_listing
    from orchestration import stage_assets

    repo = tmp_path / "repo"            # the code location's checkout; its data/ is the pods' shared claim
    repo.mkdir()
    (repo / "data").symlink_to(cluster.data)
    audio = repo / "data" / "corpus" / "audio"
    audio.mkdir(parents=True)
    for i in range(9):
        (audio / f"piece{i}.wav").write_bytes(bytes([i]) * 64)
    (repo / "params.yaml").write_text("profile: cluster\ncluster:\n  partitions: {count: 3, concurrency: 2}\n")
    script = tmp_path / "fanout_stage.py"
    script.write_text(FANOUT_SCRIPT)
    monkeypatch.setattr(stage_assets, "REPO_ROOT", repo)
    stage = Stage(name="toy", group="test", description="a fanned-out toy stage", argv=(), deps=(),
                  outs=("data/out",), params="toy", part_argv=("part", "{partition}"))
    launcher = FanoutK8sLauncher(script=str(script), profile="cluster", poll_interval=0.1,
                                 kubeconfig_file=str(cluster.kubeconfig))
    result = dg.materialize([stage_asset(stage)], resources={"launcher": launcher, "dvc": DvcResource(enabled=False)},
                            raise_on_error=False, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    keys = [p.key for p in partitions(read_listing(repo / "data" / "corpus"), 3)]
    commands = [pod["spec"]["containers"][0]["command"][2:] for pod in cluster.created]
    assert len(keys) >= 2
    # the partitions' pods first (in any order), the whole stage's last
    assert sorted(commands[:-1]) == sorted(["part", key] for key in keys) and commands[-1] == []
    assert len({pod["metadata"]["name"] for pod in cluster.created}) == len(keys) + 1
    assert all(pod["spec"]["containers"][0]["resources"] == cluster.created[-1]["spec"]["containers"][0]["resources"]
               for pod in cluster.created)
    [mat] = [m for m in result.asset_materializations_for_node("toy") if m.asset_key == dg.AssetKey("toy")]
    assert mat.metadata["found"].value == len(keys) and mat.metadata["fanout.partitions_run"].value == len(keys)
    assert cluster.pods == {} and len(cluster.deleted) == len(keys) + 1
