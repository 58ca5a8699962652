"""Every kustomize overlay renders with kubectl (from its wheel), every object in it validates
(core kinds strict, the training runtime against the Trainer schema, the lint), and everything
the stage table refers to exists in it."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.pipeline import STAGES
from orchestration.k8s.specs import workload
from orchestration.k8s.table import default_table
from orchestration.k8s.validate import ManifestError, validate_manifest

OVERLAYS = Path(__file__).resolve().parents[2] / "infra" / "kustomize" / "overlays"
KUBECTL = Path(sys.executable).parent / "kubectl"


def render(overlay: Path) -> list[dict]:
    out = subprocess.run([str(KUBECTL), "kustomize", str(overlay)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module", params=sorted(p.name for p in OVERLAYS.iterdir()))
def rendered(request):
    return request.param, render(OVERLAYS / request.param)


def test_every_object_validates(rendered):
    _, docs = rendered
    assert len(docs) >= 15
    for doc in docs:
        validate_manifest(doc)


def index(docs):
    return {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in docs}


def test_what_stage_pods_refer_to_exists(rendered):
    name, docs = rendered
    objs = index(docs)
    table = default_table()
    ns = table.namespace
    # the stage namespace enforces the Pod Security level test_specs checks stage pods against
    assert objs[("Namespace", None, ns)]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    sa = objs[("ServiceAccount", ns, table.service_account)]
    assert sa["automountServiceAccountToken"] is False
    assert ("PersistentVolumeClaim", ns, table.data_volume.claim) in objs
    for ref in table.settings.values():
        assert ref.key in objs[("ConfigMap", ns, ref.config_map)]["data"]
    for pool in table.pools.values():
        assert ("PriorityClass", None, pool.priority_class) in objs
    for stage in STAGES:
        row = table.row(stage)
        if row.train_job:
            runtime = objs[("ClusterTrainingRuntime", None, row.train_job.runtime)]
            [rj] = runtime["spec"]["template"]["spec"]["replicatedJobs"]
            pod = rj["template"]["spec"]["template"]["spec"]
            assert pod["automountServiceAccountToken"] is False
            # the TrainJob patches the runtime's `node` job and container
            job = workload(stage, "cluster")
            patch = job["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]
            assert patch["name"] == rj["name"]
            assert pod["containers"][0]["name"] == patch["template"]["spec"]["template"]["spec"]["containers"][0]["name"]
            assert pod["containers"][0]["image"].startswith(table.image.rsplit(":", 1)[0] + ":")


def test_the_training_runtime_rejects_unknown_fields(rendered):
    _, docs = rendered
    runtime = next(d for d in docs if d["kind"] == "ClusterTrainingRuntime")
    pod = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    pod["containers"][0]["securityContext"] = {"runAsNonRot": True}
    with pytest.raises(ManifestError, match="runAsNonRot"):
        validate_manifest(runtime)


def test_the_launcher_may_do_what_it_does_and_no_more(rendered):
    _, docs = rendered
    objs = index(docs)
    table = default_table()
    role = objs[("Role", table.namespace, "lyra-stage-launcher")]
    rights = {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert {"create", "get", "list", "delete"} <= rights[("", "pods")]
    assert rights[("", "pods/log")] == {"get"}
    assert {"create", "get", "delete"} <= rights[("trainer.kubeflow.org", "trainjobs")]
    assert ("", "secrets") not in rights                         # it never reads the S3 credentials
    binding = objs[("RoleBinding", table.namespace, "lyra-stage-launcher")]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "lyra-dagster", "namespace": "lyra"}]


def test_overlays_differ_where_environments_do():
    dev, prod = (index(render(OVERLAYS / n)) for n in ("dev", "prod"))
    quota = ("ResourceQuota", "lyra-stages", "lyra-stages")
    assert dev[quota]["spec"]["hard"]["requests.nvidia.com/gpu"] != prod[quota]["spec"]["hard"]["requests.nvidia.com/gpu"]
    settings = ("ConfigMap", "lyra-stages", "lyra-settings")
    assert dev[settings]["data"]["s3-endpoint"] != prod[settings]["data"]["s3-endpoint"]
