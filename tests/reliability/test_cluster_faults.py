"""The cluster's failure modes users report, run against the stand-in API server (tests/infra/fake_kube.py)
with the launcher's own stand-in stage (tests/infra/test_k8s_launcher.py, mode `slow`: 10 checkpointed steps):

    a pod deleted mid-run (dagster#22453)     the step does not hang: the pod's disappearance is a disruption,
                                              retried on a new pod that resumes from the checkpoint
    an evicted pod (dagster PR #29380)        SIGTERM, exit 143: retried, and the retry resumes
"""

from __future__ import annotations

import signal
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
