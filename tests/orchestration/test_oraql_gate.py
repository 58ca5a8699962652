"""The ORAQL gate: a blocking check on `oraql` that passes on the targets and names what failed."""

import json

import dagster as dg

from orchestration.defs import asset_checks

GOOD = {"spearman_clip": 0.85, "spearman_clip_ci95": [0.8, 0.9], "spearman_system": 0.97,
        "spearman_system_ci95": [0.9, 0.99], "pairwise_accuracy": 0.85, "pairwise_accuracy_ci95": [0.8, 0.9],
        "held_out_type": "clipping", "held_out_spearman": 0.7, "held_out_spearman_ci95": [0.5, 0.8],
        "untrained_held_out_spearman": 0.05, "n_test_items": 300, "n_test_clips": 16}


def run_gate(tmp_path, monkeypatch, metrics):
    (tmp_path / "models" / "oraql").mkdir(parents=True)
    (tmp_path / "models" / "oraql" / "evaluation.json").write_text(json.dumps({"metrics": metrics}))
    monkeypatch.setattr(asset_checks, "DATA", tmp_path)
    return asset_checks.oraql_gate()


def test_gate_is_a_blocking_check_on_oraql():
    spec = next(iter(asset_checks.oraql_gate.check_specs))
    assert spec.asset_key == dg.AssetKey("oraql") and spec.blocking


def test_gate_passes_on_targets_and_names_failures(tmp_path, monkeypatch):
    assert run_gate(tmp_path, monkeypatch, GOOD).passed
    result = run_gate(tmp_path / "b", monkeypatch, {**GOOD, "pairwise_accuracy": 0.6})
    assert not result.passed and result.description == "ORAQL refused: pairwise_accuracy"
    assert result.metadata["gate.pairwise_accuracy"].value is False
