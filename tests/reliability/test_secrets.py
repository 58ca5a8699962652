"""Canary credentials never leak: S3 keys and the database password are planted in the environment, the
platform works with them, and nothing it writes, prints or raises contains them.

Scanned: a stage run (curation: its output folder, lineage, metrics, logs), the registry (entries, audit
log, report), every stage's pod or TrainJob spec and the serving Deployment (references only), the
Dagster materialization of a registry asset (its event log), the service's pages, metrics and errors, and
the error a database connection failure raises.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.registry.conftest import project  # noqa: F401 - the throwaway project fixture

REPO = Path(__file__).resolve().parents[2]
CANARIES = {"AWS_ACCESS_KEY_ID": "CANARYAKIA7F3A9Q", "AWS_SECRET_ACCESS_KEY": "canary-aws-secret-7f3a9q",
            "LYRA_PG_PASSWORD": "canary-pg-password-7f3a9q"}


def leaks(text: str) -> list[str]:
    return [name for name, value in CANARIES.items() if value in text]


def scan(folder: Path) -> dict[str, list[str]]:
    found = {}
    for path in folder.rglob("*"):
        if path.is_file():
            hit = leaks(path.read_bytes().decode("latin-1"))
            if hit:
                found[str(path.relative_to(folder))] = hit
    return found


def test_no_written_file_log_spec_page_or_error_holds_a_credential(project, monkeypatch, tmp_path):
    import dagster as dg
    import sqlalchemy as sa

    for name, value in CANARIES.items():
        monkeypatch.setenv(name, value)
    root = project.root

    # 1. a stage run with the credentials in its environment
    audio = root / "data" / "corpus" / "audio"
    audio.mkdir(parents=True)
    t = np.arange(3 * 22050) / 22050
    for i in range(3):
        sf.write(audio / f"piece{i}.wav", 0.3 * np.sin(2 * np.pi * (220 + 50 * i) * t), 22050)
    run = subprocess.run([str(Path(sys.executable).parent / "lyra"), "curate", "--input", str(audio), "--out",
                          str(root / "data" / "curated_canary"), "--metrics", str(root / "data" / "metrics" / "c.json")],
                         cwd=root, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert leaks(run.stdout + run.stderr) == []

    # 2. the registry: entries, audit log, report; and the Dagster event log of the registry asset
    from orchestration.defs.assets.registry import registered_models, registry_asset
    from orchestration.registry import RegistryResource

    project.train_codec(seed=0, valid_mel_distance=0.9)
    asset = registry_asset("omnicodec", registered_models()["omnicodec"], known=set())
    result = dg.materialize([asset], resources={"registry": RegistryResource(repo=str(root))},
                            instance=dg.DagsterInstance.ephemeral())
    events = "\n".join(str(e) for e in result.all_events)
    assert "omnicodec" in events and leaks(events) == []

    # 3. every stage's Kubernetes spec and the rendered overlays (the serving Deployment among them)
    from components.pipeline import STAGES
    from orchestration.k8s.specs import workload
    from tests.infra.test_kustomize import OVERLAYS, render

    specs = [workload(stage, "cluster") for stage in STAGES]
    specs += [doc for overlay in OVERLAYS.iterdir() for doc in render(overlay)]
    text = json.dumps(specs)
    assert "secretKeyRef" in text and leaks(text) == []

    # 4. a database that refuses the connection: its error names no password
    monkeypatch.setenv("LYRA_PG_HOST", "127.0.0.1")
    monkeypatch.setenv("LYRA_PG_PORT", "9")                     # nothing listens there
    from components.listening.votes import VoteStore

    try:
        VoteStore.open("unused.sqlite", root)
        raise AssertionError("connected to nothing")
    except sa.exc.OperationalError as exc:
        assert leaks(str(exc)) == [] and leaks(repr(exc)) == []

    assert scan(root) == {}                                      # data/, the registry repository, reports, .lyra/
