"""The `k8s` launcher: a stage's command in a pod on its node pool, Lyra pretraining as a TrainJob.

    attempt 1 ──► pod / TrainJob ──► succeeded ─────────────────────────► Pipes results
                        │
                        ├─ OOMKilled ──────────► attempt n+1 with memory x oom_memory_factor
                        ├─ evicted / pre-empted / killed by a signal ──► attempt n+1 (same spec)
                        └─ exited with an error ─► fail now (a retry would fail the same way)

A retry resumes rather than repeats: outputs are written atomically and training checkpoints
live beside the output on the shared data volume. The launcher keeps each failed pod until it
has read why it died, then deletes it; a TrainJob is deleted with its pods.

Waiting is unbounded where the cluster, not the stage, is slow: dagster-k8s gives a pod five
hours to become ready (counting the time it queues for a GPU) and a day to finish; here neither
limit applies (a queued pod waits for its node; a week-long run streams its logs throughout,
the reader reconnecting hourly).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from typing import Any, Callable, Iterator, Mapping

import dagster as dg
import kubernetes
from dagster_k8s.client import DagsterK8sError, DagsterKubernetesClient, WaitForPodState
from dagster_k8s.pipes import PipesK8sClient, PipesK8sPodLogsMessageReader
from kubernetes.utils import parse_quantity

from components.pipeline import Stage
from orchestration.launchers import StageLauncher
from orchestration.k8s import specs
from orchestration.k8s.table import TABLE_PATH, Table, load_table

ATTEMPT_LABEL = "lyra.dev/attempt"
RUN_LABEL = "lyra.dev/run-id"
JOBSET_LABEL = "jobset.sigs.k8s.io/jobset-name"
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"


# --------------------------------------------------------------------------- why a pod ended
@dataclasses.dataclass(frozen=True)
class PodOutcome:
    kind: str          # succeeded | oom | disrupted | error
    detail: str
    container: str = ""    # the container whose end decided it (its log tail goes into the error)

    @property
    def retriable(self) -> bool:
        return self.kind in ("oom", "disrupted")


def pod_outcome(pod: kubernetes.client.V1Pod | None) -> PodOutcome:
    """Why a pod stopped, from its status (the kubelet's record, not the log)."""
    if pod is None:
        return PodOutcome("disrupted", "the pod disappeared (deleted by a node drain or the scheduler)")
    status = pod.status or kubernetes.client.V1PodStatus()
    if status.reason == "Evicted":
        return PodOutcome("disrupted", f"evicted: {status.message or ''}".strip())
    for cond in status.conditions or []:
        if cond.type == "DisruptionTarget" and cond.status == "True":
            return PodOutcome("disrupted", f"disrupted ({cond.reason}): {cond.message or ''}".strip())
    # init containers run first (ours or a mutating webhook's: a mesh proxy, a secrets agent): one that failed
    # is why the stage never started (dagster#32428)
    for kind, statuses in (("init container", status.init_container_statuses), ("container", status.container_statuses)):
        worst = None
        for cs in statuses or []:
            term = cs.state.terminated if cs.state else None
            if term is None:
                continue
            if term.reason == "OOMKilled":
                return PodOutcome("oom", f"{kind} {cs.name} was OOMKilled (exit {term.exit_code})", cs.name)
            if term.exit_code and term.exit_code > 128:
                worst = PodOutcome("disrupted", f"{kind} {cs.name} was killed by signal {term.exit_code - 128}", cs.name)
            elif term.exit_code and worst is None:
                worst = PodOutcome("error", f"{kind} {cs.name} exited with code {term.exit_code}: "
                                            f"{term.message or term.reason or ''}".strip(), cs.name)
        if worst is not None:
            return worst
    if status.phase == "Succeeded":
        return PodOutcome("succeeded", "")
    return PodOutcome("error", f"pod ended in phase {status.phase}: {status.reason or ''} {status.message or ''}".strip())


def worst_outcome(outcomes: list[PodOutcome]) -> PodOutcome:
    """For a job of several pods: an OOM decides (more memory helps), then an application error
    (no retry helps), then a disruption."""
    for kind in ("oom", "error", "disrupted"):
        for o in outcomes:
            if o.kind == kind:
                return o
    return PodOutcome("disrupted", "the job failed without a failed pod")


def grown_memory(current: str, factor: float, ceiling: str | None) -> str:
    """`current` x factor in Mi, capped at `ceiling`."""
    mib = int(float(parse_quantity(current)) * factor / (1 << 20)) + 1
    if ceiling is not None:
        mib = min(mib, int(parse_quantity(ceiling) / (1 << 20)))
    return f"{mib}Mi"


class StageAttemptFailed(Exception):
    def __init__(self, outcome: PodOutcome):
        super().__init__(outcome.detail)
        self.outcome = outcome


# ------------------------------------------------------------------------------------- pods
class PatientPipesK8sClient(PipesK8sClient):
    """PipesK8sClient without the readiness deadline: dagster-k8s waits at most
    WAIT_TIMEOUT_FOR_READY (5 h, a module constant) and counts Pending time, so a GPU pod that
    queued for hours would fail just as it started. The cluster's queue, not the client, decides."""

    @contextlib.contextmanager
    def consume_pod_logs(self, context, client, namespace, pod_name, enable_multi_container_logs=False,
                         ignore_containers=None) -> Iterator:
        client.wait_for_pod(pod_name, namespace, wait_for_state=WaitForPodState.Ready,
                            wait_time_between_attempts=self.poll_interval, wait_timeout=0,
                            pod_launch_timeout=0, ignore_containers=ignore_containers)
        self.message_reader.consume_pod_logs(context=context, core_api=client.core_api,
                                             namespace=namespace, pod_name=pod_name)
        client.wait_for_pod = self._until_ended_or_gone(client)
        yield

    def _until_ended_or_gone(self, client):
        """dagster-k8s waits for the pod to end by polling for it; a pod deleted while it ran (kubectl delete,
        a lost node) is then 'not launched yet' for up to a day (dagster#22453). A pod this run saw running
        that is gone is a disruption: fail the attempt now (the launcher retries disruptions)."""
        original = client.wait_for_pod

        def wait(pod_name, namespace, wait_for_state=WaitForPodState.Ready, **kwargs):
            while wait_for_state == WaitForPodState.Terminated:
                pods = client.core_api.list_namespaced_pod(namespace, field_selector=f"metadata.name={pod_name}").items
                if not pods:
                    raise DagsterK8sError(f"pod {pod_name} disappeared before it ended (deleted, or its node was lost)")
                statuses = pods[0].status.container_statuses or []
                if pods[0].status.phase in ("Succeeded", "Failed") or \
                        (statuses and all(c.state is not None and c.state.terminated for c in statuses)):
                    break
                time.sleep(self.poll_interval)
            return original(pod_name, namespace, wait_for_state=wait_for_state, **kwargs)

        return wait


def log_tail(core: kubernetes.client.CoreV1Api, pod, container: str, lines: int = 20) -> str:
    """The last lines a failed container printed, for the step's error (the pod is deleted after): an init
    container's log is the only record of why it failed."""
    if not container:
        return ""
    try:
        text = core.read_namespaced_pod_log(pod.metadata.name, pod.metadata.namespace, container=container,
                                            tail_lines=lines)
    except kubernetes.client.ApiException as exc:      # a container that never started has no log
        return f" (no log: {exc.reason})"
    text = (text or "").rstrip()
    return f"; its last log lines:\n{text}" if text else ""


def _delete(fn: Callable, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except kubernetes.client.ApiException as exc:
        if exc.status != 404:
            raise


# -------------------------------------------------------------------------------- TrainJobs
class PipesTrainJobClient(dg.PipesClient):
    """Runs a Kubeflow Trainer TrainJob as one Pipes session: every node gets the Pipes
    variables, only global rank 0 opens the channel (components/common/reporting.py), and the
    client streams rank 0's log (where the messages are) while following the job's conditions."""

    GROUP, VERSION, PLURAL = "trainer.kubeflow.org", "v1alpha1", "trainjobs"

    def __init__(self, core_api: kubernetes.client.CoreV1Api, custom_api: kubernetes.client.CustomObjectsApi,
                 poll_interval: float = 10.0):
        self.core_api, self.custom_api, self.poll_interval = core_api, custom_api, poll_interval
        self.message_reader = PipesK8sPodLogsMessageReader()

    @classmethod
    def _is_dagster_maintained(cls) -> bool:
        return False

    def _pods(self, namespace: str, name: str, extra: str = "") -> list:
        selector = f"{JOBSET_LABEL}={name}" + (f",{extra}" if extra else "")
        return self.core_api.list_namespaced_pod(namespace, label_selector=selector).items

    def _conditions(self, namespace: str, name: str) -> dict[str, str]:
        job = self.custom_api.get_namespaced_custom_object(self.GROUP, self.VERSION, namespace, self.PLURAL, name)
        return {c["type"]: c["status"] for c in (job.get("status") or {}).get("conditions") or []}

    def _wait_for_rank0(self, namespace: str, name: str) -> str:
        """Rank 0's pod once its container runs or ran (no deadline: GPU nodes may queue)."""
        while True:
            for pod in self._pods(namespace, name, f"{INDEX_LABEL}=0"):
                if any(cs.state and (cs.state.running or cs.state.terminated)
                       for cs in (pod.status.container_statuses or [])):
                    return pod.metadata.name
            if self._conditions(namespace, name).get("Failed") == "True":
                raise StageAttemptFailed(self._failure(namespace, name))
            time.sleep(self.poll_interval)

    def _failure(self, namespace: str, name: str) -> PodOutcome:
        """Why the job failed, from its ended pods (the others are being stopped because of it)."""
        ended = [p for p in self._pods(namespace, name)
                 if p.status is None or p.status.phase not in ("Pending", "Running") or p.status.reason == "Evicted"]
        return worst_outcome([o for o in map(pod_outcome, ended) if o.kind != "succeeded"])

    def run(self, *, context, extras: Mapping[str, Any] | None, namespace: str,
            build: Callable[[Mapping[str, str]], dict]) -> dg.PipesClientCompletedInvocation:
        with dg.open_pipes_session(context=context, extras=extras, context_injector=dg.PipesEnvContextInjector(),
                                message_reader=self.message_reader) as session:
            body = build(session.get_bootstrap_env_vars())
            name = body["metadata"]["name"]
            self.custom_api.create_namespaced_custom_object(self.GROUP, self.VERSION, namespace, self.PLURAL, body)
            context.log.info(f"created TrainJob {namespace}/{name}")
            try:
                rank0 = self._wait_for_rank0(namespace, name)
                context.log.info(f"streaming rank 0's log from pod {rank0}")
                self.message_reader.consume_pod_logs(context=context, core_api=self.core_api,
                                                     pod_name=rank0, namespace=namespace)
                while True:
                    conditions = self._conditions(namespace, name)
                    if conditions.get("Complete") == "True":
                        break
                    if conditions.get("Failed") == "True":
                        raise StageAttemptFailed(self._failure(namespace, name))
                    time.sleep(self.poll_interval)
            finally:
                _delete(self.custom_api.delete_namespaced_custom_object, self.GROUP, self.VERSION, namespace,
                        self.PLURAL, name, propagation_policy="Foreground")
        return dg.PipesClientCompletedInvocation(session)


# --------------------------------------------------------------------------------- launcher
class K8sLauncher(StageLauncher):
    """Stages as pods on their node pool (PipesK8sClient), Lyra pretraining as a TrainJob."""

    namespace: str | None = None            # default: the table's namespace
    table_path: str = str(TABLE_PATH)
    kubeconfig_file: str | None = None      # default: in-cluster config when running in a pod
    load_incluster_config: bool | None = None
    poll_interval: float = 10.0
    overrides: list[str] = []               # `--set KEY=VALUE` added to every stage command

    def table(self) -> Table:
        return load_table(self.table_path)

    def command(self, stage: Stage) -> list[str]:
        return specs.stage_command(stage, self.overrides)

    def _apis(self):
        client = PatientPipesK8sClient(load_incluster_config=self.load_incluster_config,
                                       kubeconfig_file=self.kubeconfig_file, poll_interval=self.poll_interval)
        client._load_k8s_config()  # the same config for our own calls (inspecting, deleting, TrainJobs)
        return client, DagsterKubernetesClient.production_client().core_api, kubernetes.client.CustomObjectsApi()

    def launch(self, context, stage, extras):
        table = self.table()
        row = table.row(stage)
        namespace = self.namespace or table.namespace
        memory: str | None = None
        attempts = table.retries.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                if row.train_job is not None:
                    return self._run_train_job(context, stage, extras, table, namespace, memory, attempt)
                return self._run_pod(context, stage, extras, table, namespace, memory, attempt)
            except StageAttemptFailed as failed:
                outcome = failed.outcome
                if not outcome.retriable:
                    raise dg.Failure(description=f"{stage.name}: {outcome.detail} (not retried: an application "
                                                 "error fails the same way again)") from None
                if attempt == attempts:
                    raise dg.Failure(description=f"{stage.name}: {outcome.detail}; gave up after {attempts} attempts") from None
                if outcome.kind == "oom":
                    memory = grown_memory(memory or row.memory_limit or row.memory, table.retries.oom_memory_factor,
                                          row.max_memory)
                context.log.warning(f"{stage.name}: attempt {attempt} ended: {outcome.detail}; starting attempt "
                                    f"{attempt + 1}" + (f" with memory {memory}" if memory else "")
                                    + " (it resumes from its checkpoint)")
        raise AssertionError("unreachable")

    def _run_pod(self, context, stage, extras, table, namespace, memory, attempt):
        client, core, _ = self._apis()
        attempt_id = uuid.uuid4().hex[:12]
        meta = specs.pod_meta(stage, table)
        meta["labels"][ATTEMPT_LABEL] = attempt_id
        meta["labels"][RUN_LABEL] = context.run_id        # what reaper.py matches against the run's status
        context.log.info(f"launching {stage.name} on the {table.row(stage).pool} pool (attempt {attempt}): "
                         f"{' '.join(self.command(stage))}")
        failed: Exception | None = None
        try:
            invocation = client.run(
                context=context, extras=dict(extras), namespace=namespace, image=table.image_for(),
                command=self.command(stage), base_pod_meta=meta,
                base_pod_spec=specs.base_pod_spec(stage, self.profile, table=table, memory=memory),
                pod_wait_timeout=0,                # no deadline on the run itself
                delete_pod_on_completion=False,    # read why it ended first, then delete it
            )
        except Exception as exc:  # DagsterK8sError and friends; the pod's status says what happened
            failed, invocation = exc, None
        except BaseException:     # the run was cancelled or interrupted: its pod goes with it
            for pod in core.list_namespaced_pod(namespace, label_selector=f"{ATTEMPT_LABEL}={attempt_id}").items:
                _delete(core.delete_namespaced_pod, pod.metadata.name, namespace)
            raise
        pods = core.list_namespaced_pod(namespace, label_selector=f"{ATTEMPT_LABEL}={attempt_id}").items
        try:
            if failed is None:
                return invocation
            pod = pods[0] if pods else None
            if pod is None and not isinstance(failed, DagsterK8sError):
                raise failed        # no pod, and not because Kubernetes lost it: the client failed
            if pod is not None and pod.status.phase not in ("Succeeded", "Failed") and pod.status.reason != "Evicted":
                raise failed        # the pod had not ended: the client failed, not the stage
            outcome = pod_outcome(pod)
            if outcome.kind == "succeeded":
                raise failed        # the pod was fine: the failure is ours or Pipes', not the stage's
            if outcome.kind == "error" and pod is not None:
                outcome = dataclasses.replace(outcome, detail=outcome.detail + log_tail(core, pod, outcome.container))
            raise StageAttemptFailed(outcome) from failed
        finally:
            for pod in pods:
                _delete(core.delete_namespaced_pod, pod.metadata.name, namespace)

    def _run_train_job(self, context, stage, extras, table, namespace, memory, attempt):
        _, core, custom = self._apis()
        name = specs.k8s_name(f"{stage.name}-{context.run_id[:8]}-{attempt}")
        client = PipesTrainJobClient(core, custom, poll_interval=self.poll_interval)

        def build(pipes_env: Mapping[str, str]) -> dict:
            job = specs.train_job(stage, self.profile, name=name, table=table, extra_env=pipes_env, memory=memory,
                                  overrides=self.overrides)
            body = specs.manifest(job)
            body["metadata"]["labels"][RUN_LABEL] = context.run_id
            return body

        context.log.info(f"launching {stage.name} as TrainJob {name} (attempt {attempt})")
        return client.run(context=context, extras=dict(extras), namespace=namespace, build=build)
