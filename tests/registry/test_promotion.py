"""Promotion through gates: promoted and recorded, refused with the gate named, forced with actor and reason."""

import json

import pytest

from components.registry.promote import promote
from components.registry.registry import RegistryError
from tests.registry.conftest import CODEC_EVAL


def audit(project) -> list[dict]:
    return [json.loads(line) for line in (project.root / "registry" / "audit.jsonl").read_text().splitlines()]


def promoted_codec(project) -> object:
    """v0.0.1 in staging and production."""
    project.train_codec(seed=0, valid_mel_distance=0.90)
    reg = project.registry()
    reg.register("omnicodec")
    assert promote(reg, "omnicodec", "v0.0.1", "staging", "first codec", actor="alice").outcome == "promoted"
    assert promote(reg, "omnicodec", "v0.0.1", "production", "ship it", actor="alice").outcome == "promoted"
    return reg


def test_a_passing_version_is_promoted_and_recorded(project):
    reg = promoted_codec(project)
    assert reg.holder("omnicodec", "staging") == reg.holder("omnicodec", "production") == "v0.0.1"
    record = audit(project)[-1]
    assert record["outcome"] == "promoted" and record["actor"] == "alice" and record["reason"] == "ship it"
    assert {g["name"] for g in record["gates"]} == {"stage_order", "codec_gate", "no_regression"}
    assert "registry/audit.jsonl" in project.git("show", "--name-only", "HEAD")          # committed
    message = project.git("tag", "-n1", "-l", "omnicodec#production#*")
    assert '"actor": "alice"' in message and "ship it" in message

    project.train_codec(seed=1, valid_mel_distance=0.89)                  # within tolerance of v0.0.1: passes
    reg.register("omnicodec")
    decision = promote(reg, "omnicodec", "latest", "staging", "retrained on the same data")
    assert decision.outcome == "promoted" and decision.previous_holder == "v0.0.1"
    assert reg.holder("omnicodec", "staging") == "v0.0.2"


def test_a_regressing_version_is_refused_with_the_gate_and_its_numbers(project):
    reg = promoted_codec(project)
    project.train_codec(seed=1, valid_mel_distance=1.30)                  # worse on the same valid clips
    reg.register("omnicodec")
    decision = promote(reg, "omnicodec", "v0.0.2", "staging", "try the new one", actor="bob")

    assert decision.outcome == "refused" and [g.name for g in decision.failed] == ["no_regression"]
    gate = decision.failed[0]
    assert "omnicodec.valid_mel_distance 1.3 vs holder 0.9" in gate.detail and "tolerance 0.02" in gate.detail
    assert gate.numbers["omnicodec.valid_mel_distance"] == {"candidate": 1.3, "holder": 0.9, "tolerance": 0.02,
                                                           "higher_is_better": False}
    assert reg.holder("omnicodec", "staging") == "v0.0.1"                   # nothing moved
    assert audit(project)[-1]["outcome"] == "refused" and audit(project)[-1]["actor"] == "bob"
    assert "refused" in project.git("log", "-1", "--format=%s")             # the refusal is committed too


def test_a_version_that_failed_a_blocking_check_is_refused_by_that_check(project):
    reg = project.registry()
    project.train_codec(seed=0, valid_mel_distance=0.9,
                        eval_metrics={**CODEC_EVAL, "mel_distance": 2.5})    # worse than the untrained codec
    reg.register("omnicodec")
    decision = promote(reg, "omnicodec", "v0.0.1", "staging", "looks fine")
    assert decision.outcome == "refused" and [g.name for g in decision.failed] == ["codec_gate"]
    assert "mel_distance_below_untrained" in decision.failed[0].detail
    assert "mel_distance 2.5, untrained.mel_distance 2.1" in decision.failed[0].detail      # with its numbers


def test_production_takes_only_versions_that_were_in_staging(project):
    project.train_codec(seed=0, valid_mel_distance=0.9)
    reg = project.registry()
    reg.register("omnicodec")
    decision = promote(reg, "omnicodec", "v0.0.1", "production", "skip staging")
    assert decision.outcome == "refused" and [g.name for g in decision.failed] == ["stage_order"]


def test_a_forced_promotion_needs_an_actor_and_a_reason_and_records_both(project):
    reg = promoted_codec(project)
    project.train_codec(seed=1, valid_mel_distance=1.30)
    reg.register("omnicodec")
    with pytest.raises(RegistryError, match="needs an --actor"):
        promote(reg, "omnicodec", "v0.0.2", "staging", "hotfix", force=True)
    with pytest.raises(RegistryError, match="needs a --reason"):
        promote(reg, "omnicodec", "v0.0.2", "staging", " ", force=True, actor="carol")

    decision = promote(reg, "omnicodec", "v0.0.2", "staging", "the old codec clips loud input", force=True, actor="carol")
    assert decision.outcome == "forced" and reg.holder("omnicodec", "staging") == "v0.0.2"
    record = audit(project)[-1]
    assert (record["outcome"], record["actor"], record["reason"]) == ("forced", "carol", "the old codec clips loud input")
    assert [g["name"] for g in record["gates"] if not g["passed"]] == ["no_regression"]
    tag = project.git("tag", "-n1", "-l", "omnicodec#staging#*").splitlines()[-1]
    assert "carol" in tag and '"failed_gates": ["no_regression"]' in tag
    assert project.git("log", "-1", "--format=%an").strip() == "carol"


def test_versions_on_different_held_out_data_are_not_compared_silently(project):
    reg = promoted_codec(project)
    (project.root / "data" / "curated" / "manifest.txt").write_text("clip a\nclip b\nclip c\n")   # new data
    project.train_codec(seed=1, valid_mel_distance=0.5)
    reg.register("omnicodec")
    decision = promote(reg, "omnicodec", "v0.0.2", "staging", "more data")
    assert decision.outcome == "refused"
    assert "held-out data differ (data/curated)" in decision.failed[0].detail


def test_the_record_survives_without_any_dagster_instance(project):
    """Everything lives in git: a fresh Registry object (or a fresh clone's tags) sees the same holders."""
    promoted_codec(project)
    from components.registry.registry import Registry

    assert Registry(project.root).holder("omnicodec", "production") == "v0.0.1"
    clone = project.root.parent / "clone"
    project.git("clone", "-q", str(project.root), str(clone))
    assert "omnicodec#production#3" in project.git("-C", str(clone), "tag").split()
    assert len([r for r in audit(project) if r["event"] == "promotion"]) == 2


def test_lyra_promote_exits_1_on_a_refusal_and_prints_the_gate(project, monkeypatch, capsys):
    from components.cli import main as lyra

    promoted_codec(project)
    project.train_codec(seed=1, valid_mel_distance=1.30)
    monkeypatch.chdir(project.root)
    assert lyra(["registry", "register", "omnicodec"]) == 0
    assert lyra(["promote", "omnicodec", "v0.0.2", "--to", "staging", "--reason", "newer"]) == 1
    out = capsys.readouterr().out
    assert "REFUSED" in out and "gate no_regression: FAILED" in out and "1.3 vs holder 0.9" in out
    assert lyra(["promote", "omnicodec", "v0.0.2", "--to", "staging", "--reason", "x", "--force"]) == 2
    assert "needs an --actor" in capsys.readouterr().err
    assert lyra(["promote", "omnicodec", "v0.0.2", "--to", "staging", "--reason", "x", "--force", "--actor", "dan"]) == 0
    assert lyra(["registry", "list", "omnicodec"]) == 0
    listing = capsys.readouterr().out
    assert "v0.0.2" in listing and "staging" in listing.split("v0.0.2")[1].splitlines()[0]


def test_a_metric_the_holder_never_measured_is_noted_not_held_against_the_candidate():
    from components.registry.promote import no_regression_gate

    class Rule:
        higher_is_better, tolerance = False, 1.0

    class Spec:
        compare = {"s.old": Rule(), "s.new": Rule()}

    class Reg:
        def spec(self, name):
            return Spec()

    held_out = {"digest": "d", "data": {}}
    holder = {"version": "v1", "held_out": held_out, "metrics": {"s": {"old": 1.0}}}
    entry = {"model": "m", "version": "v2", "held_out": held_out, "metrics": {"s": {"old": 1.5, "new": 3.0}}}
    gate = no_regression_gate(Reg(), entry, holder)
    assert gate.passed and gate.numbers["s.new"]["holder"] is None and "predates" in gate.detail
    assert not no_regression_gate(Reg(), {**entry, "metrics": {"s": {"old": 3.0, "new": 3.0}}}, holder).passed
    assert not no_regression_gate(Reg(), {**entry, "metrics": {"s": {"new": 3.0}}}, holder).passed   # candidate lacks it
