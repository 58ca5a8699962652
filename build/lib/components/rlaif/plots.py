"""The post-training run on one figure: reward and KL to the pretrained model per step, and the held-out result."""

from __future__ import annotations

import os
from pathlib import Path

from components.common.atomic import atomic_path


def plot_reward_and_kl(path: str | os.PathLike, history: dict, metrics: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom, measures) = plt.subplots(3, 1, figsize=(7, 7.5), dpi=110, sharex=True)
    if history.get("reward"):
        steps, values = zip(*history["reward"])
        top.plot(steps, values, lw=1.2, label="training reward (rollout mean)")
    held = history.get("held_out") or []
    if held:
        top.plot([s for s, _ in held], [m["reward"] for _, m in held], "o-", ms=3, label="valid prompts (monitor)")
    top.axhline(metrics["reward_pretrained"], color="grey", ls="--", label="test prompts: pretrained")
    top.axhline(metrics["reward_post_trained"], color="green", ls="--", label="test prompts: post-trained")
    bon_kl = "KL %.2f, capped" % metrics["best_of_n_kl_nats"] if metrics.get("best_of_n_capped") else "same KL"
    top.axhline(metrics["reward_best_of_n"], color="orange", ls=":", label=f"test prompts: best-of-{metrics['best_of_n']} ({bon_kl})")
    top.set_ylabel("reward")
    top.legend(fontsize=7)
    top.grid(alpha=0.3)
    if history.get("kl"):
        steps, values = zip(*history["kl"])
        bottom.plot(steps, values, lw=1.2, color="crimson")
    bottom.set_ylabel("KL to pretrained\n(nats / code)")
    bottom.grid(alpha=0.3)
    if held:      # what a hacked reward would move: diversity down, silence up
        steps = [s for s, _ in held]
        measures.plot(steps, [m["diversity"] for _, m in held], "o-", ms=3, label="diversity (same prompt)")
        measures.plot(steps, [m["silent_fraction"] for _, m in held], "s-", ms=3, label="silent fraction")
        if any(m.get("judge_instrument_accuracy") == m.get("judge_instrument_accuracy") for _, m in held):   # not all nan
            measures.plot(steps, [m.get("judge_instrument_accuracy", float("nan")) for _, m in held], "^-", ms=3,
                          label="judge hears the instrument")
        measures.legend(fontsize=7)
    measures.set_ylabel("valid-prompt measures")
    measures.set_xlabel("GRPO step")
    measures.grid(alpha=0.3)
    fig.suptitle(f"RLAIF: test-prompt gain {metrics['reward_gain']:+.4f} "
                 f"[{metrics['reward_gain_ci95'][0]:+.4f}, {metrics['reward_gain_ci95'][1]:+.4f}], "
                 f"KL {metrics['kl_nats_per_code']:.3f} nats/code ({metrics['kl_nats_per_piece']:.1f} a piece)", fontsize=9)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
