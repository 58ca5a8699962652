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


def test_a_policy_that_plays_noise_is_refused_by_the_independent_evaluator_even_when_the_reward_is_fooled():
    """A stub reward that always says 1 (gain interval far above 0, every reward rule passes); the post-trained
    pieces replaced by white noise. The evaluator nobody here trained must refuse it; the same pieces as the
    pretrained model's must pass it."""
    import numpy as np
    import soundfile as sf

    from components.rlaif.evaluate import IndependentCheck
    from tests.evaluation.test_musicnn import FIXTURES

    rate = 16_000
    windows = []
    for name in ("demo_piano", "demo_strings"):
        audio, _ = sf.read(FIXTURES / f"{name}.wav", dtype="float32")
        windows += [audio[int(s * rate): int(s * rate) + 3 * rate] for s in np.arange(0.0, 3.1, 0.25)]
    music, reference = windows[0::2], windows[1::2]             # pieces and the real set: other windows
    noise = [np.random.default_rng(i).standard_normal(len(w)).astype(np.float32) * w.std() for i, w in enumerate(music)]
    check = IndependentCheck(reference, rate)
    fooled = {**GOOD, "reward_gain_ci95": [0.5, 0.9]}           # ORAQL (or any reward) fooled: always 1
    instruments = ["piano"] * (len(music) // 2) + ["strings"] * (len(music) - len(music) // 2)

    noisy = {**fooled, **check.compare(music, noise, instruments)}
    assert noisy["independent_kad_difference_interval95"][0] > 0
    assert "independent_kad_not_worse" in failed(noisy)
    assert "improved" not in failed(noisy)                     # the reward alone would have let it through

    same = {**fooled, **check.compare(music, music, instruments)}
    assert failed(same) == []
    assert same["independent_kad_difference"] == 0.0


def test_the_independent_rules_apply_only_when_the_evaluator_took_part():
    assert not any(k.startswith("independent") for k in rlaif_gate_decisions(GOOD))
    measured = {**GOOD, "independent_kad_worse": False, "independent_adherence_p_post_worse": 0.3}
    assert failed(measured) == []
    assert failed({**measured, "independent_adherence_p_post_worse": 0.01}) == ["independent_adherence_not_worse"]
