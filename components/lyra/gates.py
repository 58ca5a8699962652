"""Lyra's gates, by name, from its stage metrics (the blocking asset checks apply them).

    pretrain:  loss_below_unigram       chosen model's selection-split loss <= max_ratio x unigram
    samples:   text_beats_no_text       the independent judge: with text > without, McNemar p < alpha
"""

from __future__ import annotations

from components.common.stage import NotMeasurable, not_measurable


def pretrain_gate_decisions(metrics: dict, max_loss_vs_unigram: float | None) -> dict:
    """No rules (accepted) when the limit is None."""
    if max_loss_vs_unigram is None:
        return {}
    ratio = metrics.get("val_vs_unigram")
    if ratio is None and "test_vs_unigram" in metrics:      # trained, but the corpus has no valid split
        return {"loss_below_unigram": NotMeasurable("no valid clips: nothing held out to choose and judge the "
                                                    "model on (test never decides)")}
    return {"loss_below_unigram": ratio is not None and ratio <= max_loss_vs_unigram}


def samples_gate_decisions(metrics: dict, head: str | None, alpha: float) -> dict:
    """No rules (accepted) when the head is None; not measurable when the corpus has no such tags."""
    if head is None:
        return {}
    unmeasured = not_measurable(metrics, f"judge_{head}")
    if unmeasured:
        return {"text_beats_no_text": unmeasured}
    text, no_text = metrics.get(f"judge_{head}_accuracy_text"), metrics.get(f"judge_{head}_accuracy_no_text")
    p = metrics.get(f"judge_{head}_p_text_vs_no_text")
    return {"text_beats_no_text": None not in (text, no_text, p) and text > no_text and p < alpha}


def pretrain_gate(metrics: dict, cfg) -> dict[str, bool]:
    """`lyra_beats_unigram` as declared (components/lyra/declaration.py); cfg: LMConfig."""
    return pretrain_gate_decisions(metrics, cfg.gate_max_loss_vs_unigram)


def samples_gate(metrics: dict, cfg) -> dict[str, bool]:
    """`judge_hears_the_prompt` as declared; cfg: GenerateConfig."""
    return samples_gate_decisions(metrics, cfg.gate_head, cfg.gate_alpha)
