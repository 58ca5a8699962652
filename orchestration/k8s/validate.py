"""Offline checks of every manifest this project produces or ships.

No API server can run here, so three layers stand in for `kubectl apply --dry-run=server`:

1. core kinds (Pod, Namespace, RBAC, quotas, ...) against Kubernetes' own JSON schemas with
   kubernetes-validate in strict mode (unknown fields are errors);
2. Kubeflow Trainer kinds (TrainJob, ClusterTrainingRuntime) against the JSON schema of the
   typed models Kubeflow publishes (`kubeflow-trainer-api`, generated from the Trainer's
   OpenAPI spec), with `additionalProperties: false` added to every object that lists its
   properties (kubeconform's approach): a misspelt `numNode` or `efect` is an error, not a
   silently dropped key;
3. a lint for what neither schema checks: quantities that do not parse, GPU requests unequal
   to limits, memory limits below requests, mounts of volumes the pod does not have.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Any, Iterator

import jsonschema
import kubernetes_validate
from kubernetes.utils import parse_quantity
from pydantic.json_schema import GenerateJsonSchema

from components.common.errors import LyraError

K8S_VERSION = "1.37.0"
GPU = "nvidia.com/gpu"
TRAINER_GROUP = "trainer.kubeflow.org"


class ManifestError(LyraError, ValueError):
    pass


def describe(doc: dict) -> str:
    return f"{doc.get('kind', '?')}/{(doc.get('metadata') or {}).get('name', '?')}"


# ------------------------------------------------------------------------------- core kinds
def validate_core(doc: dict) -> None:
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = "/".join(str(p) for p in exc.path)
        raise ManifestError(f"{describe(doc)}: {exc.message} (at {path or 'top level'})") from exc


# ---------------------------------------------------------------------- custom resources
class _KubernetesJsonSchema(GenerateJsonSchema):
    """Pydantic's schema of the generated models, with Kubernetes' two union scalars written as
    the CRD writes them: a Quantity is a string or a number, an IntOrString a string or an int
    (the models express them as oneOf wrapper classes, which JSON never contains)."""

    SCALARS = {
        "IoK8sApimachineryPkgApiResourceQuantity": {"anyOf": [{"type": "string"}, {"type": "number"}]},
        "IoK8sApimachineryPkgUtilIntstrIntOrString": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    }

    def model_schema(self, schema):
        scalar = self.SCALARS.get(schema["cls"].__name__)
        return copy.deepcopy(scalar) if scalar else super().model_schema(schema)


def close_objects(schema: Any) -> Any:
    """Add additionalProperties: false to every object schema that lists its properties.

    Optional fields, which pydantic writes as `anyOf: [X, null]`, become plain X: a manifest
    leaves a field out rather than sending null, and errors then point at the field itself."""
    if isinstance(schema, dict):
        out = {k: close_objects(v) for k, v in schema.items()}
        options = out.get("anyOf")
        if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
            out.pop("anyOf")
            out.update(next(o for o in options if o != {"type": "null"}))
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [close_objects(v) for v in schema]
    return schema


def _trainer_models() -> dict[str, type]:
    from kubeflow_trainer_api import models

    return {"TrainJob": models.TrainerV1alpha1TrainJob,
            "ClusterTrainingRuntime": models.TrainerV1alpha1ClusterTrainingRuntime,
            "TrainingRuntime": models.TrainerV1alpha1TrainingRuntime}


CUSTOM_KINDS = tuple(_trainer_models())


@functools.lru_cache(maxsize=None)
def custom_resource_schema(kind: str) -> dict:
    model = _trainer_models()[kind]
    schema = model.model_json_schema(by_alias=True, schema_generator=_KubernetesJsonSchema)
    return close_objects(schema)


def validate_custom(doc: dict) -> None:
    kind = doc.get("kind")
    if kind not in CUSTOM_KINDS or not str(doc.get("apiVersion", "")).startswith(TRAINER_GROUP + "/"):
        raise ManifestError(f"{describe(doc)}: no schema for {doc.get('apiVersion')} {kind}")
    validator = jsonschema.Draft202012Validator(custom_resource_schema(kind))
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{'/'.join(map(str, e.absolute_path)) or 'top level'}: {e.message}" for e in errors[:5]]
        raise ManifestError(f"{describe(doc)}: " + "; ".join(lines))


# -------------------------------------------------------------------------------------- lint
def pod_specs(doc: dict) -> Iterator[tuple[str, dict, list[dict]]]:
    """(where, pod spec or patch, its containers) in any kind that carries pods."""
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    if kind == "Pod":
        yield "spec", spec, spec.get("containers", []) + spec.get("initContainers", [])
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        pod = (spec.get("template") or {}).get("spec") or {}
        yield "spec.template.spec", pod, pod.get("containers", []) + pod.get("initContainers", [])
    elif kind == "TrainJob":
        trainer = spec.get("trainer") or {}
        yield "spec.trainer", {}, [{"name": "trainer", "resources": trainer.get("resourcesPerNode") or {}}]
        for i, patch in enumerate(spec.get("runtimePatches") or []):
            for j, rj in enumerate(((patch.get("trainingRuntimeSpec") or {}).get("template") or {})
                                   .get("spec", {}).get("replicatedJobs") or []):
                pod = ((rj.get("template") or {}).get("spec") or {}).get("template", {}).get("spec") or {}
                yield (f"spec.runtimePatches[{i}].replicatedJobs[{j}]", pod,
                       pod.get("containers", []) + pod.get("initContainers", []))
    elif kind in ("ClusterTrainingRuntime", "TrainingRuntime"):
        for j, rj in enumerate(((spec.get("template") or {}).get("spec") or {}).get("replicatedJobs") or []):
            pod = ((rj.get("template") or {}).get("spec") or {}).get("template", {}).get("spec") or {}
            yield f"spec.template.replicatedJobs[{j}]", pod, pod.get("containers", []) + pod.get("initContainers", [])


# <signedNumber><suffix>, suffix binary SI (Ki..Ei), decimal SI (n..E) or an exponent; no spaces
QUANTITY = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$")


def _quantity(value: Any, where: str, problems: list[str]):
    try:
        if isinstance(value, bool) or not QUANTITY.match(str(value)):
            raise ValueError(value)
        return parse_quantity(value)
    except (ValueError, TypeError):
        problems.append(f"{where}: {value!r} is not a Kubernetes quantity")
        return None


def lint(doc: dict) -> list[str]:
    """Problems that the schemas let through (an empty list when there are none)."""
    problems: list[str] = []
    for where, pod, containers in pod_specs(doc):
        volumes = {v.get("name") for v in pod.get("volumes") or []}
        for v in pod.get("volumes") or []:
            limit = (v.get("emptyDir") or {}).get("sizeLimit")
            if limit is not None:
                _quantity(limit, f"{where}.volumes[{v.get('name')}].emptyDir.sizeLimit", problems)
        for c in containers:
            at = f"{where}.containers[{c.get('name')}]"
            res = c.get("resources") or {}
            requests, limits = res.get("requests") or {}, res.get("limits") or {}
            parsed = {side: {k: _quantity(v, f"{at}.resources.{side}.{k}", problems) for k, v in values.items()}
                      for side, values in (("requests", requests), ("limits", limits))}
            if GPU in requests or GPU in limits:
                if parsed["requests"].get(GPU) != parsed["limits"].get(GPU):
                    problems.append(f"{at}: GPU requests ({requests.get(GPU)}) must equal limits ({limits.get(GPU)})")
            for name in ("cpu", "memory"):
                req, lim = parsed["requests"].get(name), parsed["limits"].get(name)
                if req is not None and lim is not None and lim < req:
                    problems.append(f"{at}: {name} limit {limits[name]} is below its request {requests[name]}")
            for m in c.get("volumeMounts") or []:
                if m.get("name") not in volumes:
                    problems.append(f"{at}: mounts volume {m.get('name')!r} at {m.get('mountPath')} "
                                    f"but the pod has no such volume")
    if doc.get("kind") == "TrainJob":
        problems += train_job_processes(doc)
    return problems


def train_job_processes(doc: dict) -> list[str]:
    """Processes per node that Kubeflow Trainer would not start as written. The torch runtime derives the count
    from resourcesPerNode: one process per GPU, and without GPUs at most one per CPU of the limit (trainer#2407),
    so a numProcPerNode that disagrees is silently overridden. And resourcesPerNode replaces the runtime's
    container resources whole (trainer#3974): set on a GPU pool without the GPU, the pods lose their GPUs."""
    trainer = (doc.get("spec") or {}).get("trainer") or {}
    nproc, res = trainer.get("numProcPerNode"), trainer.get("resourcesPerNode") or {}
    limits = {**(res.get("requests") or {}), **(res.get("limits") or {})}
    ignored: list[str] = []
    gpus = _quantity(limits[GPU], "spec.trainer.resourcesPerNode." + GPU, ignored) if GPU in limits else None
    cpus = _quantity(limits["cpu"], "spec.trainer.resourcesPerNode.cpu", ignored) if "cpu" in limits else None
    problems = []
    if isinstance(nproc, int) and not isinstance(nproc, bool):
        if gpus:
            if nproc != int(gpus):
                problems.append(f"spec.trainer: numProcPerNode {nproc} but resourcesPerNode gives {int(gpus)} GPU(s) per "
                                f"node: the torch runtime starts one process per GPU, so {nproc} would become {int(gpus)}")
        elif cpus is not None and nproc > max(1, int(cpus)):
            problems.append(f"spec.trainer: numProcPerNode {nproc} but resourcesPerNode limits a node to {cpus} CPU(s): "
                            f"without GPUs the runtime caps the processes at the CPU limit, so {nproc} would become "
                            f"{max(1, int(cpus))}")
    on_gpu_pool = any(t.get("key") == GPU for _, pod, _ in pod_specs(doc) for t in pod.get("tolerations") or [])
    if on_gpu_pool and res and not gpus:
        problems.append(f"spec.trainer.resourcesPerNode: names no {GPU} for a job on the GPU pool (it tolerates "
                        f"{GPU}); resourcesPerNode replaces the runtime's resources, so its pods would get no GPU")
    return problems


# ------------------------------------------------------------------------------ everything
def validate_manifest(doc: dict) -> None:
    """Schema (core or custom) then lint; raises ManifestError naming the object and the problem."""
    if str(doc.get("apiVersion", "")).startswith(TRAINER_GROUP + "/"):
        validate_custom(doc)
    else:
        validate_core(doc)
    problems = lint(doc)
    if problems:
        raise ManifestError(f"{describe(doc)}: " + "; ".join(problems))


# --------------------------------------------------------------- Pod Security "restricted"
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret"}


def restricted_violations(pod: dict, containers: list[dict]) -> list[str]:
    """What the `restricted` Pod Security Standard (enforced on lyra-stages) would refuse at
    admission: a schema-valid pod that no API server would run."""
    problems = []
    psc = pod.get("securityContext") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            problems.append(f"{key} is not allowed")
    for v in pod.get("volumes") or []:
        kinds = set(v) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"volume {v.get('name')}: {sorted(kinds - RESTRICTED_VOLUMES)} is not allowed")
    for c in containers:
        sc = c.get("securityContext") or {}
        at = f"container {c.get('name')}"
        if sc.get("privileged"):
            problems.append(f"{at}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{at}: allowPrivilegeEscalation must be false")
        if not sc.get("runAsNonRoot", psc.get("runAsNonRoot")):
            problems.append(f"{at}: runAsNonRoot must be true")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            problems.append(f"{at}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{at}: seccompProfile must be RuntimeDefault or Localhost")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append(f"{at}: capabilities must drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{at}: capabilities may add only NET_BIND_SERVICE")
        if any(p.get("hostPort") for p in c.get("ports") or []):
            problems.append(f"{at}: hostPort")
    return problems
