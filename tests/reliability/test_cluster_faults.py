"""The cluster's failure modes users report, run against the stand-in API server (tests/infra/fake_kube.py)
with the launcher's own stand-in stage (tests/infra/test_k8s_launcher.py, mode `slow`: 10 checkpointed steps):

    a pod deleted mid-run (dagster#22453)     the step does not hang: the pod's disappearance is a disruption,
                                              retried on a new pod that resumes from the checkpoint
    an evicted pod (dagster PR #29380)        SIGTERM, exit 143: retried, and the retry resumes
    a failing init container (dagster#32428)  (injected by a mutating webhook, as a secrets agent is) the step fails
                                              at once, not retried, naming the container with its last log lines
                                              (the dagster-k8s in the lock stops waiting, PR #34212; the launcher
                                              said only "pod ended in phase Failed")
    a run whose run worker died (dagster#14833)  its pods and TrainJobs are deleted by the reaper sensor
                                              (orchestration/k8s/reaper.py); a live run's are kept
"""

from __future__ import annotations

import signal
import sys
import threading
import time

from tests.infra.test_k8s_launcher import cluster, run_stage  # noqa: F401 - the stand-in cluster fixture


def first_running_pod(cluster, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pod in list(cluster.pods.values()):
            if pod.proc is not None and pod.proc.poll() is None:
                return pod
        time.sleep(0.05)
    raise TimeoutError("no pod started")


def run_while(tmp_path, cluster, fault):
    """The slow stage, with `fault(pod)` applied to its first pod 1.5 s after it started; (result, seconds)."""
    def later():
        pod = first_running_pod(cluster)
        time.sleep(1.5)                                    # a few steps in
        fault(pod)

    threading.Thread(target=later, daemon=True).start()
    start = time.monotonic()
    result = run_stage(tmp_path, cluster, "slow")
    return result, time.monotonic() - start


def resumed_on_a_second_pod(result) -> bool:
    [mat] = result.asset_materializations_for_node("flaky")
    return mat.metadata["attempt"].value == 2 and mat.metadata["resumed_from"].value > 0


def test_a_pod_deleted_mid_run_is_retried_and_resumes_instead_of_hanging(tmp_path, cluster):
    def delete(pod):                                       # `kubectl delete pod`: gone from the API, process killed
        cluster.pods.pop((pod.namespace, pod.name), None)
        pod.kill()
        cluster.deleted.append(pod.name)

    result, took = run_while(tmp_path, cluster, delete)
    assert result.success, result.log_messages[-10:]
    assert took < 120                                      # it hung (for up to a day) before the fix
    assert resumed_on_a_second_pod(result) and len(cluster.created) == 2


def test_an_evicted_pod_is_retried_and_resumes(tmp_path, cluster):
    result, _ = run_while(tmp_path, cluster, lambda pod: pod.kill(signal.SIGTERM))   # the kubelet's eviction
    assert result.success, result.log_messages[-10:]
    assert resumed_on_a_second_pod(result)


def step_failure(result) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return str(failure.event_specific_data.error.message)


def test_a_failing_init_container_fails_the_step_at_once_with_its_message(tmp_path, cluster):
    cluster.webhook_init_containers = [{"name": "secrets-agent-init", "image": "agent", "command": [
        sys.executable, "-c", "import sys; print('fetching secret/lyra/s3'); "
                              "print('permission denied: role lyra-stage may not read secret/lyra/s3'); sys.exit(1)"]}]
    start = time.monotonic()
    result = run_stage(tmp_path, cluster, "ok")
    assert time.monotonic() - start < 60                   # no wait for a readiness that cannot come
    assert not result.success
    message = step_failure(result)
    assert "init container secrets-agent-init exited with code 1" in message, message
    assert "permission denied: role lyra-stage may not read secret/lyra/s3" in message, message
    assert "not retried" in message and len(cluster.created) == 1 and cluster.pods == {}
    assert not (cluster.data / "attempts").exists()         # the stage itself never ran


def test_the_pods_of_a_run_whose_worker_died_are_reaped_and_a_live_runs_are_kept(cluster):
    import dagster as dg
    from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

    from orchestration.defs.sensors import orphaned_pods_sensor
    from orchestration.k8s.launcher import RUN_LABEL, K8sLauncher

    instance = dg.DagsterInstance.ephemeral()
    runs = {"dead": DagsterRunStatus.FAILURE, "live": DagsterRunStatus.STARTED, "done": DagsterRunStatus.SUCCESS}
    for run_id, status in runs.items():        # run monitoring marks a run whose worker died as failed
        instance.add_run(DagsterRun(job_name="lifecycle", run_id=run_id, status=status))

    def pod(name, labels):
        return cluster.add_pod("lyra", {"metadata": {"name": name, "labels": labels}, "spec": {"containers": [
            {"name": "stage", "command": [sys.executable, "-c", "import time; time.sleep(60)"]}]}})

    pod("gpu-stage-of-dead-run", {RUN_LABEL: "dead"})
    pod("stage-of-live-run", {RUN_LABEL: "live"})
    pod("finished-stage-of-done-run", {RUN_LABEL: "done"})
    pod("stage-of-a-run-this-instance-never-saw", {RUN_LABEL: "gone"})
    pod("not-ours", {"app": "something-else"})
    launcher = K8sLauncher(profile="cluster", kubeconfig_file=str(cluster.kubeconfig), namespace="lyra")
    with dg.build_sensor_context(instance=instance, resources={"launcher": launcher}) as context:
        result = orphaned_pods_sensor(context)
    assert "deleted 3 orphaned object(s)" in str(result.skip_message)
    assert sorted(name for _, name in cluster.pods) == ["not-ours", "stage-of-live-run"]
    assert sorted(cluster.deleted) == ["finished-stage-of-done-run", "gpu-stage-of-dead-run",
                                       "stage-of-a-run-this-instance-never-saw"]
    for p in list(cluster.pods.values()):
        p.kill()
