"""RLAIF's stage as the pipeline sees it (components/common/stage.py)."""

from components.common.stage import Gate, Model, Stage

STAGES = (
    Stage(
        name="lyra_rlaif", group="rlaif",
        description="Post-train Lyra with GRPO (TRL) against a reward model; held-out gain, KL, best-of-n, diversity.",
        argv=("rlaif", "train", "--model", "data/models/lyra", "--codec", "data/models/omnicodec",
              "--tokens", "data/tokens", "--judge", "data/models/judge", "--out", "data/models/lyra_rlaif"),
        # the reward model (rlaif.reward_model) is ORAQL: reading it puts its blocking gate before RLAIF
        deps=("data/models/lyra", "data/models/omnicodec", "data/tokens", "data/models/oraql", "data/models/judge"),
        outs=("data/models/lyra_rlaif",), params="rlaif", config="components.rlaif.config:RLAIFConfig",
        pool="gpu", priority=1,    # ORAQL -> RLAIF is the longest chain after Lyra's pretraining
        registers=Model("lyra_rlaif", parents=("lyra", "oraql", "omnicodec")),
        gates=(Gate("rlaif_gate", "post-trained Lyra improved on held-out prompts within the KL bound, without "
                    "collapse, silence or a prompt the judge hears less often", "components.rlaif.gates:rlaif_gate",
                    numbers=("reward_pretrained", "reward_post_trained", "reward_gain", "reward_gain_ci95",
                             "kl_nats_per_code", "max_kl_per_code", "best_of_n", "reward_best_of_n",
                             "diversity_pretrained", "diversity_post_trained", "silent_fraction_pretrained",
                             "silent_fraction_post_trained", "judge_instrument_accuracy_pretrained",
                             "judge_instrument_accuracy_post_trained", "judge_n", "judge_p_post_worse"),
                    # a refusal is an outcome, not a broken run, unless a team asks for it to fail: the
                    # post-trained model stays a candidate and the pretrained Lyra stays what is served
                    refusal_fails_run="gate_refusal_fails_run"),),
    ),
)
