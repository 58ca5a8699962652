"""Every stage's pod and the training job, as the `cluster` profile builds them, pass strict
schema validation and the lint; misspelt or inconsistent specs are caught."""

import copy

import pytest
import yaml

from components.pipeline import STAGES, stage_by_name
from orchestration.k8s.specs import GPU, base_pod_spec, stage_nproc, train_job, workload
from orchestration.k8s.table import TABLE_PATH, TableError, default_table, load_table
from orchestration.k8s.validate import ManifestError, lint, train_job_processes, validate_manifest


def pod_containers(doc):
    return doc["spec"]["containers"]


def patch_pod(doc):
    """The pod-spec patch inside a TrainJob's runtime patch."""
    rj = doc["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]
    return rj["template"]["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def workloads():
    return {s.name: workload(s, "cluster") for s in STAGES}


@pytest.mark.parametrize("stage", [s.name for s in STAGES])
def test_every_stage_builds_a_valid_spec(workloads, stage):
    validate_manifest(workloads[stage])


def test_pods_run_the_stage_command_where_the_table_says(workloads):
    table = default_table()
    for stage in STAGES:
        doc, row = workloads[stage.name], table.row(stage)
        assert row.pool == stage.pool, f"{stage.name}: infra/stages.yaml and components/pipeline.py disagree on the pool"
        if doc["kind"] == "TrainJob":
            continue
        [container] = pod_containers(doc)
        assert container["command"] == stage.command
        assert doc["spec"]["nodeSelector"] == table.pools[row.pool].node_selector
        tolerated = {t["key"] for t in doc["spec"].get("tolerations", [])}
        assert ("nvidia.com/gpu" in tolerated) == (row.pool == "gpu")
        gpus = container["resources"]["limits"].get(GPU)
        assert (gpus is not None) == bool(row.gpus)
        assert {"name": "LYRA_PROFILE", "value": "cluster"} in container["env"]


@pytest.mark.parametrize("stage", [s.name for s in STAGES if s.part_argv])
def test_a_partitions_pod_is_its_stages_pod_running_the_per_partition_command(workloads, stage):
    whole = stage_by_name(stage)
    part = whole.part("0007-0123456789ab")
    doc = workload(part, "cluster")
    validate_manifest(doc)
    [container] = pod_containers(doc)
    assert container["command"] == part.command and "--partition" in part.command and "0007-0123456789ab" in " ".join(
        part.command)
    assert f"{whole.parts_dir}/0007-0123456789ab" in part.command       # on the shared data volume, like the stage's
    [whole_container] = pod_containers(workloads[stage])
    assert container["resources"] == whole_container["resources"] and doc["spec"]["nodeSelector"] == \
        workloads[stage]["spec"]["nodeSelector"]


def test_stage_pods_are_locked_down(workloads):
    for stage in STAGES:
        doc = workloads[stage.name]
        spec = doc["spec"] if doc["kind"] == "Pod" else patch_pod(doc)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        if doc["kind"] == "Pod":
            assert spec["automountServiceAccountToken"] is False
            assert spec["restartPolicy"] == "Never"
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
        mounts = {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
        assert {"/tmp", "/dev/shm", "/var/cache/lyra"} <= mounts
        shm = next(v for v in spec["volumes"] if v["name"] == "dshm")
        assert shm["emptyDir"]["medium"] == "Memory"


def test_credentials_appear_only_as_secret_references(workloads):
    for doc in workloads.values():
        text = yaml.safe_dump(doc)
        env = (pod_containers(doc)[0]["env"] if doc["kind"] == "Pod" else doc["spec"]["trainer"]["env"])
        creds = {e["name"]: e for e in env if e["name"].startswith("AWS_") and "KEY" in e["name"]}
        assert set(creds) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
        assert all("value" not in e and "secretKeyRef" in e["valueFrom"] for e in creds.values())
        assert "secret-access-key" in text  # the key's name, never a value


def test_training_job_is_one_trainjob_on_the_torch_runtime(workloads):
    doc = workloads["lyra_pretrain"]
    stage = stage_by_name("lyra_pretrain")
    row = default_table().row(stage)
    trainer = doc["spec"]["trainer"]
    assert doc["apiVersion"] == "trainer.kubeflow.org/v1alpha1"
    assert trainer["command"] == ["torchrun", "--no-python", *stage.command]
    assert trainer["numNodes"] == row.train_job.num_nodes
    # one process per GPU: the profile's nproc and the table's GPUs per node must agree
    assert trainer["numProcPerNode"] == stage_nproc(stage, "cluster") == row.gpus
    assert trainer["resourcesPerNode"]["limits"][GPU] == str(row.gpus)


def test_single_pod_distributed_stages_get_a_gpu_per_process():
    table = default_table()
    for stage in STAGES:
        row = table.row(stage)
        if stage.distributed and row.train_job is None and row.pool == "gpu":
            assert stage_nproc(stage, "cluster") == row.gpus, stage.name


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["spec"]["trainer"].update(numNode=2), "'numNode' was unexpected"),
    (lambda d: patch_pod(d)["tolerations"][0].update(efect="NoSchedule"), "'efect' was unexpected"),
    (lambda d: patch_pod(d)["securityContext"].update(runAsNonRot=True), "'runAsNonRot' was unexpected"),
    (lambda d: d["spec"]["trainer"].update(numNodes="4"), "is not of type 'integer'"),
])
def test_custom_resources_reject_misspelt_and_mistyped_fields(workloads, mutate, message):
    doc = copy.deepcopy(workloads["lyra_pretrain"])
    mutate(doc)
    with pytest.raises(ManifestError, match=message):
        validate_manifest(doc)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["spec"]["tolerations"][0].update(efect="NoSchedule"), "efect"),
    (lambda d: d["spec"]["securityContext"].update(runAsNonRot=True), "runAsNonRot"),
    (lambda d: d["spec"]["containers"][0].update(comand=["x"]), "comand"),
])
def test_core_objects_reject_misspelt_fields(workloads, mutate, message):
    doc = copy.deepcopy(workloads["omnicodec"])
    mutate(doc)
    with pytest.raises(ManifestError, match=message):
        validate_manifest(doc)


@pytest.mark.parametrize("mutate, message", [
    (lambda c, s: c["resources"]["limits"].update(memory="64 Gi"), "not a Kubernetes quantity"),
    (lambda c, s: c["resources"]["requests"].update(cpu="lots"), "not a Kubernetes quantity"),
    (lambda c, s: c["resources"]["limits"].update({GPU: "4"}), "GPU requests"),
    (lambda c, s: c["resources"]["limits"].update(memory="1Gi"), "memory limit 1Gi is below"),
    (lambda c, s: s.update(volumes=[v for v in s["volumes"] if v["name"] != "dshm"]), "no such volume"),
    (lambda c, s: s["volumes"][1]["emptyDir"].update(sizeLimit="big"), "not a Kubernetes quantity"),
])
def test_lint_catches_what_schemas_let_through(workloads, mutate, message):
    doc = copy.deepcopy(workloads["omnicodec"])
    mutate(doc["spec"]["containers"][0], doc["spec"])
    problems = lint(doc)
    assert any(message in p for p in problems), problems
    with pytest.raises(ManifestError):
        validate_manifest(doc)


def test_the_lint_passes_a_good_spec_and_sees_trainjob_resources(workloads):
    assert lint(workloads["omnicodec"]) == []
    doc = copy.deepcopy(workloads["lyra_pretrain"])
    doc["spec"]["trainer"]["resourcesPerNode"]["requests"][GPU] = "4"
    assert any("GPU requests" in p for p in lint(doc))


def test_an_oom_retry_raises_memory_request_and_limit():
    spec = base_pod_spec(stage_by_name("curated_clips"), "cluster", memory="96Gi")
    res = spec["containers"][0]["resources"]
    assert res["requests"]["memory"] == res["limits"]["memory"] == "96Gi"
    job = train_job(stage_by_name("lyra_pretrain"), "cluster", name="x", memory="720Gi").to_dict()
    assert job["spec"]["trainer"]["resourcesPerNode"]["limits"]["memory"] == "720Gi"


def test_the_table_rejects_unknown_keys_and_stages(tmp_path):
    doc = yaml.safe_load(TABLE_PATH.read_text())
    bad = copy.deepcopy(doc)
    bad["stages"]["omnicodec"]["gpu"] = 8
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(TableError, match="gpu"):
        load_table(tmp_path / "a.yaml")
    bad = copy.deepcopy(doc)
    bad["stages"]["no_such_stage"] = {"pool": "cpu"}
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(TableError, match="no_such_stage"):
        load_table(tmp_path / "b.yaml")


def test_stage_pods_pass_the_restricted_pod_security_standard(workloads):
    """lyra-stages enforces `restricted`: a pod that breaks it is refused at admission."""
    from orchestration.k8s.validate import restricted_violations

    for stage in STAGES:
        doc = workloads[stage.name]
        spec = doc["spec"] if doc["kind"] == "Pod" else patch_pod(doc)
        assert restricted_violations(spec, spec["containers"]) == [], stage.name
    spec = copy.deepcopy(workloads["omnicodec"]["spec"])
    spec["containers"][0]["securityContext"]["capabilities"] = {"add": ["SYS_ADMIN"]}
    spec["volumes"].append({"name": "host", "hostPath": {"path": "/var/run"}})
    problems = restricted_violations(spec, spec["containers"])
    assert any("drop ALL" in p for p in problems) and any("hostPath" in p for p in problems)


def test_a_trainjob_whose_processes_the_runtime_would_override_is_refused(workloads):
    """Kubeflow Trainer derives processes per node from resourcesPerNode (one per GPU; at most the CPU limit
    without GPUs) and replaces the runtime's resources with it: a job written otherwise is caught here."""
    good = workloads["lyra_pretrain"]
    assert train_job_processes(good) == []
    gpus = int(good["spec"]["trainer"]["resourcesPerNode"]["limits"][GPU])

    more = copy.deepcopy(good)
    more["spec"]["trainer"]["numProcPerNode"] = gpus + 2
    assert any(f"numProcPerNode {gpus + 2} but resourcesPerNode gives {gpus} GPU(s)" in p for p in lint(more))

    no_gpu = copy.deepcopy(good)
    for side in ("requests", "limits"):
        no_gpu["spec"]["trainer"]["resourcesPerNode"][side].pop(GPU)
        no_gpu["spec"]["trainer"]["resourcesPerNode"][side]["cpu"] = "2"
    no_gpu["spec"]["trainer"]["numProcPerNode"] = 4
    problems = lint(no_gpu)
    assert any("limits a node to 2 CPU(s)" in p and "4 would become 2" in p for p in problems), problems
    assert any("names no nvidia.com/gpu for a job on the GPU pool" in p for p in problems), problems
    with pytest.raises(ManifestError, match="numProcPerNode 4"):
        validate_manifest(no_gpu)
