"""The ORAQL checks: a blocking gate (better than untrained, better than chance) and the issue's targets as a warning."""

import json

import dagster as dg

from orchestration.defs import asset_checks

GOOD = {"spearman_clip": 0.85, "spearman_clip_ci95": [0.8, 0.9], "spearman_system": 0.97,
        "spearman_system_ci95": [0.9, 0.99], "pairwise_accuracy": 0.85, "pairwise_accuracy_ci95": [0.8, 0.9],
        "held_out_type": "clipping", "held_out_spearman": 0.7, "held_out_spearman_ci95": [0.5, 0.8],
        "untrained_spearman_clip": 0.05, "untrained_held_out_spearman": 0.05, "n_test_items": 300, "n_test_clips": 16}


CHECKS = {next(iter(c.check_specs)).name: c for c in asset_checks.checks}


def run_check(name, tmp_path, monkeypatch, metrics):
    """The declared check, run by Dagster on a metrics file written where the stage writes it."""
    (tmp_path / "data" / "metrics").mkdir(parents=True)
    (tmp_path / "data" / "metrics" / "oraql.json").write_text(json.dumps(metrics))
    (tmp_path / "params.yaml").write_text("base: {}\n")
    monkeypatch.setattr(asset_checks, "REPO_ROOT", tmp_path)
    check = CHECKS[name]
    with dg.instance_for_test() as instance:
        result = dg.materialize([dg.AssetSpec("oraql"), check], instance=instance, selection=dg.AssetSelection.checks(check),
                                raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_gate_blocks_and_targets_warn():
    gate = next(iter(CHECKS["oraql_gate"].check_specs))
    targets = next(iter(CHECKS["oraql_targets"].check_specs))
    assert gate.asset_key == targets.asset_key == dg.AssetKey("oraql")
    assert gate.blocking and not targets.blocking


def test_gate_passes_a_model_that_learnt_and_names_what_failed(tmp_path, monkeypatch):
    assert run_check("oraql_gate", tmp_path, monkeypatch, GOOD).passed
    untrained_like = {**GOOD, "spearman_clip_ci95": [0.01, 0.2], "held_out_spearman": 0.0}
    result = run_check("oraql_gate", tmp_path / "b", monkeypatch, untrained_like)
    assert not result.passed
    assert result.description == "refused: per_clip_beats_untrained, held_out_type_beats_untrained"
    coin = run_check("oraql_gate", tmp_path / "c", monkeypatch, {**GOOD, "pairwise_accuracy_ci95": [0.45, 0.6]})
    assert coin.description == "refused: pairwise_beats_chance"


def test_targets_check_reports_each_missed_target(tmp_path, monkeypatch):
    assert run_check("oraql_targets", tmp_path, monkeypatch, GOOD).passed
    result = run_check("oraql_targets", tmp_path / "b", monkeypatch, {**GOOD, "pairwise_accuracy": 0.6})
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.description == "missed: pairwise_accuracy"
    assert result.metadata["rule.pairwise_accuracy"].value is False
