"""Lyra's gates: held-out loss below unigram; the independent judge hears the prompt beyond the control."""

import numpy as np

from components.judge.verdict import head_verdict
from components.lyra.gates import pretrain_gate_decisions, samples_gate_decisions


def test_pretrain_gate_needs_the_margin_below_unigram():
    assert pretrain_gate_decisions({"val_vs_unigram": 0.80}, 0.95) == {"loss_below_unigram": True}
    assert pretrain_gate_decisions({"val_vs_unigram": 0.97}, 0.95) == {"loss_below_unigram": False}
    assert pretrain_gate_decisions({}, 0.95) == {"loss_below_unigram": False}   # no selection split: refused
    assert pretrain_gate_decisions({"val_vs_unigram": 1.2}, None) == {}            # rule off


def verdict_metrics(text_hits: int, no_text_hits: int, n: int = 64) -> dict:
    truth = np.zeros(n, dtype=int)
    pred = lambda k: np.where(np.arange(n) < k, 0, 1)  # noqa: E731  (k hits, then misses)
    v = head_verdict(truth, pred(n - 4), pred(text_hits), pred(no_text_hits))
    return {f"judge_instrument_{k}": value for k, value in v.items()}


def test_samples_gate_needs_a_significant_gain_over_the_no_text_control():
    assert samples_gate_decisions(verdict_metrics(40, 12), "instrument", 0.01) == {"text_beats_no_text": True}
    # 15 vs 12 of 64: more, but chance explains it
    assert samples_gate_decisions(verdict_metrics(15, 12), "instrument", 0.01) == {"text_beats_no_text": False}
    assert samples_gate_decisions({}, "instrument", 0.01) == {"text_beats_no_text": False}


def test_verdict_reports_intervals_and_paired_p_values():
    v = head_verdict(np.zeros(64, int), np.zeros(64, int), np.r_[np.zeros(40), np.ones(24)].astype(int),
                     np.r_[np.zeros(12), np.ones(52)].astype(int))
    assert v["accuracy_text"] == 40 / 64 and v["accuracy_no_text"] == 12 / 64 and v["share_of_real"] == 40 / 64
    low, high = v["interval95_text"]
    assert low < 40 / 64 < high
    assert v["p_text_vs_no_text"] < 1e-6          # 28 discordant pairs, all favouring the text


def test_a_corpus_without_the_judges_tags_is_not_measurable_not_passed_or_failed():
    from components.lyra.declaration import STAGES
    from components.lyra.gates import samples_gate_decisions
    from components.pipeline import judge_gate

    metrics = {"not_measurable": {"judge_instrument": "the judge has no instrument head"}}
    rules = samples_gate_decisions(metrics, "instrument", 0.05)
    assert str(rules["text_beats_no_text"]) == "not measurable on this corpus: the judge has no instrument head"
    samples = next(s for s in STAGES if s.name == "lyra_samples")

    class Cfg:
        gate_head, gate_alpha = "instrument", 0.05

    verdict = judge_gate(samples, samples.gates[0], metrics, Cfg())
    assert verdict.passed and verdict.rules == {} and verdict.not_measurable == {
        "text_beats_no_text": "the judge has no instrument head"}
    assert verdict.summary == ("nothing measured; not measurable on this corpus - text_beats_no_text: the judge has "
                               "no instrument head")
