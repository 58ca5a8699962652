"""The ORAQL checks: a blocking gate (better than untrained, better than chance) and the issue's targets as a warning."""

import json

import dagster as dg

from orchestration.defs import asset_checks

GOOD = {"spearman_clip": 0.85, "spearman_clip_ci95": [0.8, 0.9], "spearman_system": 0.97,
        "spearman_system_ci95": [0.9, 0.99], "pairwise_accuracy": 0.85, "pairwise_accuracy_ci95": [0.8, 0.9],
        "held_out_type": "clipping", "held_out_spearman": 0.7, "held_out_spearman_ci95": [0.5, 0.8],
        "untrained_spearman_clip": 0.05, "untrained_held_out_spearman": 0.05, "n_test_items": 300, "n_test_clips": 16}


def run_check(check, tmp_path, monkeypatch, metrics):
    (tmp_path / "models" / "oraql").mkdir(parents=True)
    (tmp_path / "models" / "oraql" / "evaluation.json").write_text(json.dumps({"metrics": metrics}))
    monkeypatch.setattr(asset_checks, "DATA", tmp_path)
    return check()


def test_gate_blocks_and_targets_warn():
    gate = next(iter(asset_checks.oraql_gate.check_specs))
    targets = next(iter(asset_checks.oraql_targets.check_specs))
    assert gate.asset_key == targets.asset_key == dg.AssetKey("oraql")
    assert gate.blocking and not targets.blocking


def test_gate_passes_a_model_that_learnt_and_names_what_failed(tmp_path, monkeypatch):
    assert run_check(asset_checks.oraql_gate, tmp_path, monkeypatch, GOOD).passed
    untrained_like = {**GOOD, "spearman_clip_ci95": [0.01, 0.2], "held_out_spearman": 0.0}
    result = run_check(asset_checks.oraql_gate, tmp_path / "b", monkeypatch, untrained_like)
    assert not result.passed
    assert result.description == "ORAQL refused: per_clip_beats_untrained, held_out_type_beats_untrained"
    coin = run_check(asset_checks.oraql_gate, tmp_path / "c", monkeypatch, {**GOOD, "pairwise_accuracy_ci95": [0.45, 0.6]})
    assert coin.description == "ORAQL refused: pairwise_beats_chance"


def test_targets_check_reports_each_missed_target(tmp_path, monkeypatch):
    assert run_check(asset_checks.oraql_targets, tmp_path, monkeypatch, GOOD).passed
    result = run_check(asset_checks.oraql_targets, tmp_path / "b", monkeypatch, {**GOOD, "pairwise_accuracy": 0.6})
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.description == "targets missed: pairwise_accuracy"
    assert result.metadata["rule.pairwise_accuracy"].value is False
