"""Lyra's gates, by name, from its stage metrics (the blocking asset checks apply them).

    pretrain:  loss_below_unigram       chosen model's selection-split loss <= max_ratio x unigram
    samples:   text_beats_no_text       the independent judge: with text > without, McNemar p < alpha
"""

from __future__ import annotations


def pretrain_gate_decisions(metrics: dict, max_loss_vs_unigram: float) -> dict[str, bool]:
    ratio = metrics.get("val_vs_unigram")
    return {"loss_below_unigram": ratio is not None and ratio <= max_loss_vs_unigram}


def samples_gate_decisions(metrics: dict, head: str, alpha: float) -> dict[str, bool]:
    text, no_text = metrics.get(f"judge_{head}_accuracy_text"), metrics.get(f"judge_{head}_accuracy_no_text")
    p = metrics.get(f"judge_{head}_p_text_vs_no_text")
    return {"text_beats_no_text": None not in (text, no_text, p) and text > no_text and p < alpha}
