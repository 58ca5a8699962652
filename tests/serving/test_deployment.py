"""The serving Deployment and Service as every overlay renders them: admissible under the stage namespace's
`restricted` Pod Security level, probes on the service's own routes, credentials only as references, and
a command `lyra serve` accepts."""

from __future__ import annotations

import pytest

from tests.infra.test_kustomize import OVERLAYS, render


@pytest.fixture(scope="module", params=sorted(p.name for p in OVERLAYS.iterdir()))
def serving(request):
    docs = render(OVERLAYS / request.param)
    return {d["kind"]: d for d in docs if d["metadata"]["name"] == "lyra-serve"}


def test_the_deployment_is_admissible_and_placed_on_the_gpu_pool(serving):
    from orchestration.k8s.table import default_table
    from orchestration.k8s.validate import restricted_violations, validate_manifest

    deployment = serving["Deployment"]
    validate_manifest(deployment)
    validate_manifest(serving["Service"])
    pod = deployment["spec"]["template"]["spec"]
    assert restricted_violations(pod, pod["containers"]) == []
    gpu = default_table().pools["gpu"]
    assert pod["nodeSelector"] == dict(gpu.node_selector)
    [container] = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert serving["Service"]["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]


def test_probes_hit_routes_the_service_has_and_secrets_are_references(serving, tmp_path):
    from types import SimpleNamespace

    from components.serving.app import Service, build_app
    from components.serving.config import ServeConfig

    engine = SimpleNamespace(generate=None, refs={"model": "lyra@production"})
    app = build_app(Service(ServeConfig(), engine, store=None, audio_dir=tmp_path))
    routes = {getattr(r, "path", None) for r in app.routes}
    [container] = serving["Deployment"]["spec"]["template"]["spec"]["containers"]
    probes = {container[p]["httpGet"]["path"] for p in ("readinessProbe", "livenessProbe", "startupProbe")}
    assert probes == {"/readyz", "/healthz"} and probes <= routes
    for env in container["env"]:
        if "PASSWORD" in env["name"] or "SECRET" in env["name"]:
            assert "value" not in env and "secretKeyRef" in env["valueFrom"], env["name"]


def test_the_command_is_one_lyra_serve_accepts(serving):
    from components.cli import build_command_parser

    [container] = serving["Deployment"]["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    assert command[:2] == ["lyra", "serve"]
    args = build_command_parser("serve").parse_args(command[2:])
    assert (args.host, args.port, args.profile) == ("0.0.0.0", 8765, "cluster")
    assert container["ports"][0]["containerPort"] == args.port
