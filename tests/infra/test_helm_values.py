"""The Dagster Helm values use the chart's keys and types (a misspelt key fails), and the pieces
they hand to Kubernetes are valid pod fields."""

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml

from orchestration.k8s.validate import ManifestError, validate_core

INFRA = Path(__file__).resolve().parents[2] / "infra" / "helm"
VALUES = yaml.safe_load((INFRA / "dagster-values.yaml").read_text())
SCHEMA = yaml.safe_load((INFRA / "values.schema.yaml").read_text())


def errors(values: dict) -> list[str]:
    """Every error, with the alternatives' own errors where a value matched no branch of an anyOf."""
    def flat(errs):
        for e in errs:
            yield f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            yield from flat(e.context or [])
    return list(flat(jsonschema.Draft202012Validator(SCHEMA).iter_errors(values)))


def test_the_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_the_values_match_the_charts_schema():
    assert errors(VALUES) == []


@pytest.mark.parametrize("mutate, message", [
    (lambda v: v.update(computeLogManger=v.pop("computeLogManager")), "'computeLogManger' was unexpected"),
    (lambda v: v["runLauncher"]["config"]["k8sRunLauncher"].update(jobNamspace="lyra"), "'jobNamspace' was unexpected"),
    (lambda v: v["postgresql"].update(postgresqlSchema="postgresql"), "'postgresqlSchema' was unexpected"),
    (lambda v: v["postgresql"]["service"].update(port="5432"), "'5432' is not of type 'integer'"),
    (lambda v: v["runLauncher"].update(type="KubernetesRunLauncher"), "is not one of"),
    (lambda v: v["dagster-user-deployments"]["deployments"][0].update(dagsterApiGrpcArg=[]), "'dagsterApiGrpcArg' was unexpected"),
])
def test_a_misspelt_or_mistyped_value_fails(mutate, message):
    values = copy.deepcopy(VALUES)
    mutate(values)
    assert any(message in e for e in errors(values)), errors(values)


def test_what_the_cluster_needs_is_configured():
    assert VALUES["runLauncher"]["type"] == "K8sRunLauncher"
    assert VALUES["postgresql"]["enabled"] is False                       # external PostgreSQL
    assert VALUES["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    assert VALUES["computeLogManager"]["type"] == "S3ComputeLogManager"
    daemon = VALUES["dagsterDaemon"]
    assert daemon["runMonitoring"]["enabled"] and daemon["runRetries"]["enabled"]
    assert daemon["runRetries"]["retryOnAssetOrOpFailure"] is False       # stage failures: the launcher decides
    env = {e["name"]: e for e in VALUES["dagster-user-deployments"]["deployments"][0]["env"]}
    assert env["LYRA_DEPLOYMENT"]["value"] == "k8s" and env["LYRA_PROFILE"]["value"] == "cluster"
    assert "value" not in env["AWS_SECRET_ACCESS_KEY"]                     # a Secret reference only


def test_the_code_location_pod_settings_are_valid_kubernetes():
    """The chart copies these into the code location's Deployment: check them as a pod would."""
    dep = VALUES["dagster-user-deployments"]["deployments"][0]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lyra-code-location"},
           "spec": {"securityContext": dep["podSecurityContext"], "nodeSelector": dep["nodeSelector"],
                    "volumes": dep["volumes"],
                    "containers": [{"name": "lyra", "image": "lyra", "env": dep["env"], "resources": dep["resources"],
                                    "securityContext": dep["securityContext"], "volumeMounts": dep["volumeMounts"]}]}}
    validate_core(pod)
    pod["spec"]["containers"][0]["env"][0]["valu"] = "x"
    with pytest.raises(ManifestError, match="valu"):
        validate_core(pod)
