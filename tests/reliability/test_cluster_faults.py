"""The cluster's failure modes users report, against the stand-in API server (tests/infra/fake_kube.py):

    a pod deleted mid-run (dagster#22453)     the step does not hang: the pod's disappearance is a disruption,
                                              retried on a new pod that resumes from the checkpoint
    eviction / preemption (dagster PR #29380) classified as disruptions and retried (test_pod_outcomes in
                                              tests/infra covers the classification; here a whole run)
"""

from __future__ import annotations

import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

import dagster as dg

from components.pipeline import Stage
from orchestration.dvc import DvcResource
from orchestration.stage_assets import stage_asset
from tests.infra.test_k8s_launcher import ScriptK8sLauncher, cluster  # noqa: F401 - the stand-in cluster fixture

SLOW = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from dagster_pipes import open_dagster_pipes
    data = Path("data")
    attempts = data / "attempts"
    n = int(attempts.read_text()) + 1 if attempts.exists() else 1
    attempts.write_text(str(n))
    ckpt = data / ".out.checkpoints" / "step"
    with open_dagster_pipes() as pipes:
        start = int(ckpt.read_text()) if ckpt.exists() else 0
        pipes.log.info(f"attempt {n} starts at step {start}")
        for step in range(start, 8):
            ckpt.parent.mkdir(exist_ok=True)
            ckpt.write_text(str(step + 1))
            time.sleep(0.5)
        (data / "out").mkdir(exist_ok=True)
        pipes.report_asset_materialization(metadata={"attempt": n, "resumed_from": start})
""")


def run_with(tmp_path: Path, cluster, during) -> tuple[dg.ExecuteInProcessResult, float, list[str]]:
    script = tmp_path / "slow.py"
    script.write_text(SLOW)
    stage = Stage(name="slow", group="test", description="a slow stage", argv=(), deps=(),
                  outs=(str(cluster.data / "out"),), params="corpus")
    launcher = ScriptK8sLauncher(argv=[str(script)], profile="cluster", kubeconfig_file=str(cluster.kubeconfig),
                                 poll_interval=0.1)
    instance = dg.DagsterInstance.ephemeral()
    threading.Thread(target=during, daemon=True).start()
    start = time.monotonic()
    result = dg.materialize([stage_asset(stage)], resources={"launcher": launcher, "dvc": DvcResource(enabled=False)},
                            raise_on_error=False, instance=instance)
    took = time.monotonic() - start
    return result, took, [entry.user_message for entry in instance.all_logs(result.run_id)]


def first_pod(cluster, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pod in list(cluster.pods.values()):
            if pod.proc is not None and pod.proc.poll() is None:
                return pod
        time.sleep(0.05)
    raise TimeoutError("no pod started")


def test_a_pod_deleted_mid_run_is_retried_and_resumes_instead_of_hanging(tmp_path, cluster):
    def delete_the_pod():
        pod = first_pod(cluster)
        time.sleep(1.5)                                   # a few steps in
        cluster.pods.pop((pod.namespace, pod.name), None)  # `kubectl delete pod`: gone from the API, process killed
        pod.kill()
        cluster.deleted.append(pod.name)

    result, took, logs = run_with(tmp_path, cluster, delete_the_pod)
    assert result.success, logs[-10:]
    assert took < 120                                     # not a hang
    [mat] = result.asset_materializations_for_node("slow")
    assert mat.metadata["attempt"].value == 2 and mat.metadata["resumed_from"].value > 0
    assert len(cluster.created) == 2


def test_an_evicted_pod_is_retried(tmp_path, cluster):
    def evict():
        pod = first_pod(cluster)
        time.sleep(1.5)
        pod.kill(signal.SIGTERM)                          # the kubelet's eviction: SIGTERM, exit 143

    result, took, logs = run_with(tmp_path, cluster, evict)
    assert result.success, logs[-10:]
    [mat] = result.asset_materializations_for_node("slow")
    assert mat.metadata["attempt"].value == 2 and mat.metadata["resumed_from"].value > 0
