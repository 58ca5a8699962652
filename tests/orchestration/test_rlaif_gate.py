"""The RLAIF gate: a post-trained model passes only if it improved held out, within the KL bound, without hacks."""

from components.rlaif.gates import rlaif_gate_decisions

GOOD = {"reward_gain_ci95": [0.01, 0.05], "kl_nats_per_code": 0.05, "max_kl_per_code": 0.1, "diversity_pretrained": 1.0,
        "diversity_post_trained": 0.9, "silent_fraction_pretrained": 0.0, "silent_fraction_post_trained": 0.05}


def failed(metrics) -> list[str]:
    return sorted(name for name, ok in rlaif_gate_decisions(metrics).items() if not ok)


def test_a_good_run_passes():
    assert failed(GOOD) == []


def test_each_rule_stops_the_model_it_is_for():
    assert failed({**GOOD, "reward_gain_ci95": [-0.01, 0.05]}) == ["improved"]          # interval reaches zero
    assert failed({**GOOD, "kl_nats_per_code": 0.2}) == ["within_kl_bound"]               # drifted
    assert failed({**GOOD, "diversity_post_trained": 0.5}) == ["diversity_kept"]          # collapsed onto a few pieces
    assert failed({**GOOD, "silent_fraction_post_trained": 0.3}) == ["not_more_silent"]   # silence scores well


def test_the_improvement_rule_can_be_switched_off():
    worse = {**GOOD, "reward_gain_ci95": [-0.05, -0.01]}
    assert "improved" not in rlaif_gate_decisions(worse, min_gain=None)
    assert not any(ok is False for ok in rlaif_gate_decisions(worse, min_gain=None).values())


def test_a_prompt_the_judge_hears_less_often_is_refused():
    judged = {**GOOD, "judge_n": 64, "judge_p_post_worse": 0.4}
    assert failed(judged) == []
    assert failed({**judged, "judge_p_post_worse": 0.01}) == ["judge_not_worse"]
    assert "judge_not_worse" not in rlaif_gate_decisions({**GOOD, "judge_n": 0})      # no judge took part: no rule
