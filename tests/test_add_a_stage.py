"""Adding a stage is its package plus one line: a toy package (tests/fixtures/toy_stage) dropped into a copy
of the project, and "toy" added to components/pipeline.py's STAGE_PACKAGES, appears in dvc.yaml, as a
Dagster asset with its gate as a blocking asset check, as a `lyra` command, and in the registry as a
model whose promotion requires that gate."""

import difflib
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOY = Path(__file__).parent / "fixtures" / "toy_stage"

PROBE = r"""
import json, subprocess, sys
from pathlib import Path

from components.pipeline import dvc_pipeline
from orchestration.definitions import defs

root = Path.cwd()
stage = dvc_pipeline()["stages"]["toy_stage"]
graph = defs.resolve_asset_graph()
import dagster as dg
node = graph.get(dg.AssetKey("toy_stage"))
check = next(k for k in graph.asset_check_keys if k.name == "toy_gate")

from components.registry.checks import evaluate, required_checks
from components.registry.registry import load_registry_config

model = load_registry_config(root).models["toy_model"]
verdicts = []
for score in ("0.9", "0.1"):
    argv = stage["cmd"].split()[1:]
    subprocess.run([sys.executable, "-m", "components.cli", *argv, "--score", score], check=True)
    verdicts.append(evaluate(required_checks(model.stage, model.evaluations), root, None)["toy_gate"])
print(json.dumps({
    "cmd": stage["cmd"], "deps": stage["deps"],
    "upstream": sorted(k.to_user_string() for k in node.parent_keys), "group": node.group_name,
    "check_asset": check.asset_key.to_user_string(), "check_blocking": graph.get_check_spec(check).blocking,
    "model_stage": model.stage, "model_parents": list(model.parents),
    "verdicts": [[v["passed"], v["rules"], v["numbers"]] for v in verdicts],
}))
"""


def _project_copy(root: Path) -> None:
    for name in ("components", "orchestration"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("params.yaml", "pyproject.toml"):
        shutil.copy(REPO / name, root / name)
    package = root / "components" / "toy"
    package.mkdir()
    for source in TOY.glob("*.py.txt"):
        shutil.copy(source, package / source.name.removesuffix(".txt"))


def test_a_toy_stage_appears_in_dvc_dagster_the_cli_and_the_registry(tmp_path):
    _project_copy(tmp_path)
    pipeline = tmp_path / "components" / "pipeline.py"
    before = pipeline.read_text()
    after = before.replace('"oraql", "audit", "scaling")', '"oraql", "audit", "scaling",\n                  "toy")')
    pipeline.write_text(after)
    changed = [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]
    assert len([line for line in changed if line.startswith("+")]) == 2 and len(changed) == 3   # one line added

    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(tmp_path),
                               "DAGSTER_HOME": str(tmp_path / "dagster")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = __import__("json").loads(proc.stdout.strip().splitlines()[-1])
    assert found["cmd"] == "lyra toy --tokens data/tokens --out data/models/toy --metrics data/metrics/toy_stage.json"
    assert "data/tokens" in found["deps"] and "components/toy/cli.py" in found["deps"]
    assert found["upstream"] == ["token_shards"] and found["group"] == "toy"
    assert found["check_asset"] == "toy_stage" and found["check_blocking"]
    assert found["model_stage"] == "toy_stage" and found["model_parents"] == ["lyra"]
    assert found["verdicts"] == [[True, {"score_above_min": True}, {"score": 0.9}],
                                 [False, {"score_above_min": False}, {"score": 0.1}]]
    assert (tmp_path / "data" / "models" / "toy" / "model.json").is_file()
