"""A stand-in Kubernetes API server on 127.0.0.1 whose "kubelet" runs each pod's exact command
and environment as a local process.

The launcher under test talks to it through the real `kubernetes` client (a kubeconfig points
at it), so everything on the wire is what a cluster would get. What the stand-in does:

    POST   /api/v1/namespaces/N/pods              validate (kubernetes-validate, strict) -> 422 or
                                                  queue -> start the process -> Running -> terminated
    GET    /api/v1/namespaces/N/pods[/NAME]       pod(s) with a kubelet-like status
    GET    /api/v1/namespaces/N/pods/NAME/log     "<RFC3339 time> <line>" lines, chunked, ?follow
    DELETE /api/v1/namespaces/N/pods/NAME         kill and forget
    POST   /apis/trainer.kubeflow.org/v1alpha1/namespaces/N/trainjobs
                                                  validate against the Trainer schema, then act as the
                                                  torch-distributed runtime: numNodes pods running the
                                                  trainer command with PET_NNODES / PET_NPROC_PER_NODE /
                                                  PET_NODE_RANK / PET_MASTER_ADDR=127.0.0.1 / PET_MASTER_PORT
    GET|DELETE .../trainjobs/NAME                 conditions Complete / Failed from the pods

Volumes: a persistentVolumeClaim maps to a folder given per claim; an emptyDir to a fresh folder;
the container's workingDir to a fresh folder in which mounts below it appear as links. Env values
that are paths under a mount are rewritten to the mapped folder (what a mount does for the
process). A secretKeyRef resolves from the secrets given; a missing one leaves the container
waiting in CreateContainerConfigError, as a kubelet does. A process that dies of SIGKILL is
reported as OOMKilled (exit 137): the kernel's OOM killer is what sends SIGKILL to a container.
"""

from __future__ import annotations

import datetime as dt
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from orchestration.k8s.validate import ManifestError, validate_core, validate_custom

JOBSET_LABEL = "jobset.sigs.k8s.io/jobset-name"
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakePod:
    def __init__(self, cluster: "FakeCluster", namespace: str, doc: dict, extra_env: dict | None = None):
        self.cluster, self.namespace, self.doc = cluster, namespace, doc
        meta = doc.setdefault("metadata", {})
        meta.update(namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=now())
        self.name = meta["name"]
        self.extra_env = extra_env or {}
        self.lines: list[tuple[str, str]] = []
        self.init_lines: dict[str, list[tuple[str, str]]] = {}     # init container -> its log
        self.init_states: dict[str, dict] = {}                      # init container -> its state
        self.cond = threading.Condition()
        self.proc: subprocess.Popen | None = None
        self.state: dict = {"queued": True}
        self.exit_code: int | None = None
        self.reason = ""
        self.started = self.finished = None
        threading.Thread(target=self._kubelet, daemon=True).start()

    # --------------------------------------------------------------------- the "kubelet"
    def _volume_dirs(self) -> dict[str, Path]:
        root = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir=self.cluster.scratch))
        out = {}
        for v in self.doc["spec"].get("volumes", []):
            if "persistentVolumeClaim" in v:
                out[v["name"]] = Path(self.cluster.claims[v["persistentVolumeClaim"]["claimName"]])
            else:
                out[v["name"]] = root / "volumes" / v["name"]
                out[v["name"]].mkdir(parents=True)
                for entry, target in self.cluster.seed.get(v["name"], {}).items():
                    (out[v["name"]] / entry).symlink_to(target)
        out["__root__"] = root
        return out

    def _path_map(self, container: dict) -> tuple[dict[str, Path], Path]:
        vols = self._volume_dirs()
        mounts = {m["mountPath"]: vols[m["name"]] for m in container.get("volumeMounts", [])}
        workdir = container.get("workingDir")
        cwd = vols["__root__"] / "workdir"
        cwd.mkdir()
        if workdir:
            for path, target in mounts.items():
                if path.startswith(workdir.rstrip("/") + "/"):
                    link = cwd / path[len(workdir.rstrip("/")) + 1:]
                    link.parent.mkdir(parents=True, exist_ok=True)
                    link.symlink_to(target)
            if self.cluster.image_root is not None:
                for entry in Path(self.cluster.image_root).iterdir():
                    if not (cwd / entry.name).exists() and not (cwd / entry.name).is_symlink():
                        (cwd / entry.name).symlink_to(entry)
            mounts[workdir] = cwd
        return mounts, cwd

    @staticmethod
    def _rewrite(value: str, mounts: dict[str, Path]) -> str:
        for path in sorted(mounts, key=len, reverse=True):
            if value == path or value.startswith(path.rstrip("/") + "/"):
                return str(mounts[path]) + value[len(path.rstrip("/")):]
        return value

    def _env(self, container: dict, mounts: dict[str, Path]) -> dict[str, str] | str:
        env = dict(self.cluster.image_env)
        for e in container.get("env", []) + [{"name": k, "value": v} for k, v in self.extra_env.items()]:
            if "value" in e:
                env[e["name"]] = self._rewrite(str(e["value"]), mounts)
            else:
                kind, ref = next(iter(e["valueFrom"].items()))
                store = {"secretKeyRef": self.cluster.secrets, "configMapKeyRef": self.cluster.config_maps}[kind]
                values = store.get(ref["name"], {})
                if ref["key"] not in values:
                    return f'{kind} "{ref["name"]}" (key {ref["key"]}) not found'
                env[e["name"]] = values[ref["key"]]
        return env

    def _kubelet(self) -> None:
        time.sleep(self.cluster.queue_seconds)          # waiting for a node (Pending, unscheduled)
        self.state = {"waiting": {"reason": "ContainerCreating"}}
        if not self._init_containers():
            return
        container = self.doc["spec"]["containers"][0]
        mounts, cwd = self._path_map(container)
        env = self._env(container, mounts)
        if isinstance(env, str):
            self.state = {"waiting": {"reason": "CreateContainerConfigError", "message": env}}
            return
        cmd = list(container.get("command", [])) + list(container.get("args", []))
        self.started = now()
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1, start_new_session=True)
        self.state = {"running": {"startedAt": self.started}}
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append((now(), line.rstrip("\n")))
                self.cond.notify_all()
        code = self.proc.wait()
        self.finished = now()
        if code < 0:
            self.exit_code = 128 - code
            self.reason = "OOMKilled" if -code == signal.SIGKILL else "Error"
        else:
            self.exit_code, self.reason = code, ("Completed" if code == 0 else "Error")
        with self.cond:
            self.state = {"terminated": {"exitCode": self.exit_code, "reason": self.reason,
                                         "startedAt": self.started, "finishedAt": self.finished}}
            self.cond.notify_all()
        self.cluster.pod_ended(self)

    def _init_containers(self) -> bool:
        """Run spec.initContainers in order; False when one failed (restartPolicy Never: the pod fails)."""
        for container in self.doc["spec"].get("initContainers") or []:
            name = container["name"]
            mounts, cwd = self._path_map(container)
            env = self._env(container, mounts)
            self.init_states[name] = {"running": {"startedAt": now()}}
            proc = subprocess.run(list(container.get("command", [])) + list(container.get("args", [])), cwd=cwd,
                                  env=env if isinstance(env, dict) else None, capture_output=True, text=True)
            self.init_lines[name] = [(now(), line) for line in (proc.stdout + proc.stderr).splitlines()]
            self.init_states[name] = {"terminated": {"exitCode": proc.returncode,
                                                     "reason": "Completed" if proc.returncode == 0 else "Error"}}
            if proc.returncode != 0:
                with self.cond:
                    self.exit_code, self.reason = proc.returncode, "Init:Error"
                    self.state = {"waiting": {"reason": "PodInitializing"}}
                    self.init_failed = True
                    self.cond.notify_all()
                return False
        return True

    init_failed = False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            # the pod's own thread may reap the process between poll() and the kill: then it is already gone
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    # ------------------------------------------------------------------------ the API view
    def view(self) -> dict:
        doc = json.loads(json.dumps(self.doc))
        container = doc["spec"]["containers"][0]
        if "queued" in self.state:
            doc["status"] = {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": "0/4 nodes are available: 4 Insufficient nvidia.com/gpu."}]}
            return doc
        phase = {"waiting": "Pending", "running": "Running"}.get(next(iter(self.state)), None)
        if phase is None or self.init_failed:
            phase = "Succeeded" if self.exit_code == 0 else "Failed"
        doc["status"] = {"phase": phase, "containerStatuses": [{
            "name": container["name"], "image": container.get("image", ""), "imageID": "", "restartCount": 0,
            "ready": "running" in self.state, "state": self.state}]}
        if self.init_states:
            doc["status"]["initContainerStatuses"] = [
                {"name": name, "image": "", "imageID": "", "restartCount": 0, "ready": "terminated" in state
                 and state["terminated"]["exitCode"] == 0, "state": state} for name, state in self.init_states.items()]
        return doc

    def log_lines(self, since_seconds: int | None, tail: int | None, container: str | None = None) -> list[tuple[str, str]]:
        with self.cond:
            lines = list(self.init_lines[container] if container in self.init_lines else self.lines)
        if since_seconds is not None:
            cut = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=since_seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            lines = [l for l in lines if l[0] >= cut]
        return lines[-tail:] if tail else lines


class FakeTrainJob:
    """The torch-distributed runtime's part: one pod per node, rank = completion index."""

    def __init__(self, cluster: "FakeCluster", namespace: str, doc: dict):
        self.cluster, self.namespace, self.doc = cluster, namespace, doc
        self.name = doc["metadata"]["name"]
        trainer = doc["spec"]["trainer"]
        patch = doc["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]
        pod_patch = patch["template"]["spec"]["template"]["spec"]
        nodes, port = trainer.get("numNodes", 1), free_port()
        self.pods = []
        for rank in range(nodes):
            container = {**pod_patch["containers"][0], "image": trainer["image"], "command": trainer["command"],
                         "env": trainer.get("env", []), "resources": trainer.get("resourcesPerNode", {}),
                         "workingDir": cluster.runtime_working_dir}
            pod = {"metadata": {"name": f"{self.name}-node-0-{rank}",
                                "labels": {**patch["template"]["spec"]["template"]["metadata"].get("labels", {}),
                                           JOBSET_LABEL: self.name, INDEX_LABEL: str(rank)}},
                   "spec": {**pod_patch, "containers": [container]}}
            pet = {"PET_NNODES": str(nodes), "PET_NPROC_PER_NODE": str(trainer.get("numProcPerNode", 1)),
                   "PET_NODE_RANK": str(rank), "PET_MASTER_ADDR": "127.0.0.1", "PET_MASTER_PORT": str(port)}
            self.pods.append(cluster.add_pod(namespace, pod, extra_env=pet))

    def view(self) -> dict:
        doc = json.loads(json.dumps(self.doc))
        ended = [p for p in self.pods if p.exit_code is not None]
        conditions = []
        if any(p.exit_code for p in ended):
            conditions.append({"type": "Failed", "status": "True", "reason": "JobSetFailed"})
        elif len(ended) == len(self.pods):
            conditions.append({"type": "Complete", "status": "True", "reason": "JobSetCompleted"})
        doc["status"] = {"conditions": conditions}
        return doc


class FakeCluster:
    def __init__(self, scratch: Path, *, claims: dict[str, str | Path], secrets: dict[str, dict[str, str]],
                 image_env: dict[str, str], runtime_working_dir: str = "/opt/lyra", queue_seconds: float = 0.0,
                 image_root: Path | None = None, seed: dict[str, dict[str, Path]] | None = None,
                 config_maps: dict[str, dict[str, str]] | None = None, webhook_init_containers: list[dict] | None = None):
        """image_root: the image's working-directory content (linked into each pod's working dir);
        seed: {emptyDir name: {entry: path}} links placed in a new emptyDir (what a node image ships);
        webhook_init_containers: added to every pod created, as a mutating admission webhook does (a service
        mesh's proxy set-up, a secrets agent)."""
        self.webhook_init_containers = webhook_init_containers or []
        self.image_root, self.seed = image_root, seed or {}
        self.config_maps = config_maps if config_maps is not None else {"lyra-settings": {"s3-endpoint": "http://127.0.0.1:9"}}
        self.scratch, self.claims, self.secrets = Path(scratch), claims, secrets
        self.image_env, self.runtime_working_dir, self.queue_seconds = image_env, runtime_working_dir, queue_seconds
        self.pods: dict[tuple[str, str], FakePod] = {}
        self.trainjobs: dict[tuple[str, str], FakeTrainJob] = {}
        self.created: list[dict] = []       # every pod spec received, in order
        self.deleted: list[str] = []
        self.log_requests: list[dict] = []  # query of every log read (follow, sinceSeconds, ...)
        self.lock = threading.Lock()

    def add_pod(self, namespace: str, doc: dict, extra_env: dict | None = None) -> FakePod:
        if self.webhook_init_containers:
            doc["spec"]["initContainers"] = [*doc["spec"].get("initContainers", []),
                                             *json.loads(json.dumps(self.webhook_init_containers))]
        pod = FakePod(self, namespace, doc, extra_env)
        with self.lock:
            self.pods[(namespace, pod.name)] = pod
            self.created.append(json.loads(json.dumps(doc)))
        return pod

    def pod_ended(self, pod: FakePod) -> None:
        """A JobSet without restarts: one failed node fails the job, and its other pods are stopped
        (SIGTERM, as a deletion does)."""
        if pod.exit_code:
            for job in list(self.trainjobs.values()):
                if pod in job.pods:
                    for other in job.pods:
                        other.kill(signal.SIGTERM)

    # ------------------------------------------------------------------------------ server
    def serve(self) -> tuple[ThreadingHTTPServer, str]:
        cluster = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _json(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _status(self, code: int, message: str) -> None:
                self._json(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                                  "code": code, "reason": {404: "NotFound", 422: "Invalid"}.get(code, "")})

            def _body(self) -> dict:
                return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")

            def do_POST(self):
                url = urlparse(self.path)
                if m := re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods", url.path):
                    doc = self._body()
                    doc.setdefault("apiVersion", "v1"), doc.setdefault("kind", "Pod")
                    try:
                        validate_core(doc)
                    except ManifestError as exc:
                        return self._status(422, str(exc))
                    pod = cluster.add_pod(m[1], doc)
                    return self._json(201, pod.view())
                if m := re.fullmatch(r"/apis/trainer.kubeflow.org/v1alpha1/namespaces/([^/]+)/trainjobs", url.path):
                    doc = self._body()
                    try:
                        validate_custom(doc)
                    except ManifestError as exc:
                        return self._status(422, str(exc))
                    job = FakeTrainJob(cluster, m[1], doc)
                    cluster.trainjobs[(m[1], job.name)] = job
                    return self._json(201, job.view())
                self._status(404, f"no route {url.path}")

            def do_GET(self):
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if m := re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods", url.path):
                    items = [p.view() for (ns, _), p in list(cluster.pods.items()) if ns == m[1]]
                    if sel := q.get("fieldSelector"):
                        name = sel.split("=", 1)[1]
                        items = [p for p in items if p["metadata"]["name"] == name]
                    items = selected(items, q.get("labelSelector"))
                    return self._json(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
                if m := re.fullmatch(r"/apis/trainer.kubeflow.org/v1alpha1/namespaces/([^/]+)/trainjobs", url.path):
                    items = selected([j.view() for (ns, _), j in list(cluster.trainjobs.items()) if ns == m[1]],
                                     q.get("labelSelector"))
                    return self._json(200, {"kind": "TrainJobList", "apiVersion": "trainer.kubeflow.org/v1alpha1",
                                            "metadata": {}, "items": items})
                if m := re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)(/log)?", url.path):
                    pod = cluster.pods.get((m[1], m[2]))
                    if pod is None:
                        return self._status(404, f'pods "{m[2]}" not found')
                    if not m[3]:
                        return self._json(200, pod.view())
                    return self._log(pod, q)
                if m := re.fullmatch(r"/apis/trainer.kubeflow.org/v1alpha1/namespaces/([^/]+)/trainjobs/([^/]+)", url.path):
                    job = cluster.trainjobs.get((m[1], m[2]))
                    return self._json(200, job.view()) if job else self._status(404, f'trainjobs "{m[2]}" not found')
                self._status(404, f"no route {url.path}")

            def _log(self, pod: FakePod, q: dict) -> None:
                cluster.log_requests.append(dict(q))
                stamps = q.get("timestamps", "").lower() == "true"
                since = int(q["sinceSeconds"]) if "sinceSeconds" in q else None
                tail = int(q["tailLines"]) if "tailLines" in q else None
                fmt = (lambda ts, line: f"{ts} {line}\n") if stamps else (lambda ts, line: f"{line}\n")
                if q.get("follow", "").lower() != "true":
                    data = "".join(fmt(*l) for l in pod.log_lines(since, tail, q.get("container"))).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                sent = len(pod.lines) - len(pod.log_lines(since, None))     # lines older than sinceSeconds
                while True:
                    with pod.cond:
                        while len(pod.lines) == sent and "terminated" not in pod.state and not pod.init_failed \
                                and (pod.cluster.pods.get((pod.namespace, pod.name)) is pod):
                            pod.cond.wait(0.2)
                        new = pod.lines[sent:]
                        done = ("terminated" in pod.state or pod.init_failed) and len(pod.lines) == sent + len(new)
                    if new:
                        chunk = "".join(fmt(*l) for l in new).encode()
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        self.wfile.flush()
                        sent += len(new)
                    if done or pod.cluster.pods.get((pod.namespace, pod.name)) is not pod:
                        break
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def do_DELETE(self):
                url = urlparse(self.path)
                if m := re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)", url.path):
                    pod = cluster.pods.pop((m[1], m[2]), None)
                    if pod is None:
                        return self._status(404, f'pods "{m[2]}" not found')
                    pod.kill()
                    cluster.deleted.append(m[2])
                    return self._json(200, pod.view())
                if m := re.fullmatch(r"/apis/trainer.kubeflow.org/v1alpha1/namespaces/([^/]+)/trainjobs/([^/]+)", url.path):
                    job = cluster.trainjobs.pop((m[1], m[2]), None)
                    if job is None:
                        return self._status(404, f'trainjobs "{m[2]}" not found')
                    for pod in job.pods:                      # foreground deletion takes the pods along
                        pod.kill()
                        cluster.pods.pop((pod.namespace, pod.name), None)
                        cluster.deleted.append(pod.name)
                    cluster.deleted.append(m[2])
                    return self._json(200, {"kind": "Status", "status": "Success"})
                self._status(404, f"no route {url.path}")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_address[1]}"

    def shutdown(self) -> None:
        for pod in list(self.pods.values()):
            pod.kill()


def selected(items: list[dict], selector: str | None) -> list[dict]:
    """A label selector's equality ("k=v") and existence ("k") terms, comma-separated (all must hold)."""
    for term in (selector or "").split(","):
        if not term:
            continue
        key, _, value = term.partition("=")
        items = [i for i in items if key in (i["metadata"].get("labels") or {})
                 and (not _ or i["metadata"]["labels"][key] == value)]
    return items


def write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": "lyra-stages"}}],
        "users": [{"name": "fake", "user": {"token": "not-a-secret"}}],
    }))
    return path
