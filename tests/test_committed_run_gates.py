"""The tiny profile's real gates on the committed run (data/metrics/ from the last `make demo`): every declared
gate finds its figures in what its stage wrote, and its verdict is the one the README reports. The end-to-end
test shrinks the stages below what the gates can judge (tests/e2e_params.yaml turns their rules off); this is
where the real rules meet real figures in the suite. A changed metric name, rule or threshold that would flip
a verdict, or silently judge nothing, fails here."""

from pathlib import Path

import pytest

from components.pipeline import STAGES, blocking_gates, gate_input, judge_gate, stage_config

REPO = Path(__file__).resolve().parents[1]

# verdicts of the committed run on the tiny profile; RLAIF's gain interval includes 0 there (issue 21 is open):
# its refusal is reported as a warning and the pretrained Lyra stays the model to serve
EXPECTED = {"codec_gate": True, "lyra_beats_unigram": True, "judge_hears_the_prompt": True, "oraql_gate": True,
            "rlaif_gate": False, "influence_gate": True}
LIFECYCLE_GATES = [(s, g) for s in STAGES if s.job == "lifecycle" for g in blocking_gates(s)]


def test_every_blocking_gate_of_the_lifecycle_has_an_expected_verdict():
    assert sorted(g.name for _, g in LIFECYCLE_GATES) == sorted(EXPECTED)


@pytest.mark.parametrize("stage,gate", LIFECYCLE_GATES, ids=[g.name for _, g in LIFECYCLE_GATES])
def test_the_committed_run_meets_its_gates_as_reported(stage, gate):
    metrics = gate_input(stage, gate, REPO)
    verdict = judge_gate(stage, gate, metrics, stage_config(stage, REPO, "tiny"))
    assert verdict.rules, f"{gate.name}: every rule is off on the tiny profile"
    missing = [key for key in gate.numbers if key not in verdict.numbers]
    assert not missing, f"{gate.name}: declared figures absent from {stage.metrics_path}: {missing}"
    assert verdict.passed is EXPECTED[gate.name], (gate.name, verdict.rules, verdict.numbers)
