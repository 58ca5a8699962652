"""The rules a post-trained Lyra must pass, by name (the blocking `rlaif_gate` and the registry apply them)."""

from __future__ import annotations

from components.common.stage import not_measurable


def rlaif_gate_decisions(metrics: dict, min_gain: float | None = 0.0, max_diversity_loss: float = 0.2,
                         max_more_silent: float = 0.1, judge_p: float = 0.05) -> dict:
    """The rules a post-trained model must pass, by name (from `lyra rlaif train` metrics):
    it improved on held-out prompts (bootstrap interval above `min_gain`; None: rule off), stayed
    within the KL bound, and did not buy the gain with collapse (diversity), silence (the usual
    reward hacks) or a prompt the independent judge hears less often (when a judge took part); and, read by the
    evaluator nobody here trained (when it took part), did not move away from real music (KAD: the interval of
    post - pre wholly above 0) nor make the prompt harder to hear (adherence, one-sided p < judge_p)."""
    judged = metrics.get("judge_n", 0) > 0
    unjudged = not_measurable(metrics, "judge_instrument")     # a judge took part but the corpus has no such tags
    return {
        **({} if min_gain is None else {"improved": bool(metrics["reward_gain_ci95"][0] > min_gain)}),
        "within_kl_bound": bool(metrics["kl_nats_per_code"] <= metrics["max_kl_per_code"]),
        "diversity_kept": bool(metrics["diversity_post_trained"] >= (1 - max_diversity_loss) * metrics["diversity_pretrained"]),
        "not_more_silent": bool(metrics["silent_fraction_post_trained"] <= metrics["silent_fraction_pretrained"] + max_more_silent),
        **({"judge_not_worse": bool(metrics["judge_p_post_worse"] >= judge_p)} if judged
           else {"judge_not_worse": unjudged} if unjudged else {}),
        **({"independent_kad_not_worse": not metrics["independent_kad_worse"]} if "independent_kad_worse" in metrics
           else {}),
        **({"independent_adherence_not_worse": bool(metrics["independent_adherence_p_post_worse"] >= judge_p)}
           if "independent_adherence_p_post_worse" in metrics else {}),
    }


def rlaif_gate(metrics: dict, cfg) -> dict[str, bool]:
    """`rlaif_gate` as declared (components/rlaif/declaration.py); cfg: RLAIFConfig."""
    return rlaif_gate_decisions(metrics, cfg.gate_min_gain, cfg.gate_max_diversity_loss, cfg.gate_max_more_silent,
                                cfg.gate_judge_p)
