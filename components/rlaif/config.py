"""The `rlaif` params section: post-training Lyra with GRPO (TRL) against a reward model.

Defaults fit 2 CPU cores (the stage may add 2.5 min to the demo); params.yaml's tiny profile sets:
    40 steps * 4 prompts * 8 rollouts of 2 s (100 frames at 50 Hz, one 128-frame window) = 1280 rollouts
    (groups of 4 were too noisy to learn the realism reward: 240 rollouts moved KL, not the reward;
    4 prompts a step beat 2 a step at the same number of rollouts, on valid prompts)
Evaluation: 24 test prompts * 8 samples from the pretrained and from the post-trained model, plus
best-of-n from the pretrained model at the same KL (n <= 4); the monitor watches valid prompts.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.config import StageConfig


class RLAIFConfig(StageConfig):
    seed: int = 0
    # ---- the reward: "realism" (fitted here, see realism.py) or "package.module:factory", called as
    #      factory(reward_model, device) -> score(audio list, sample_rate) -> list[float] (ORAQL's adapter)
    reward: str = "realism"
    reward_model: str | None = None        # the reward model's folder, handed to the factory
    adherence_weight: float = Field(0.0, ge=0.0)   # + this x prompt adherence (adherence.py: what the text adds to
    #                                                the frozen pretrained model's likelihood); 0: ORAQL alone
    realism_clips: int = 48                # real training clips the realism reward is fitted on
    # ---- prompts: distinct training captions, plus one prompt a line from this file (embedded with MiniLM)
    prompt_file: str | None = None
    seconds: float = 2.0                   # length of every rollout
    # ---- GRPO (TRL): a group of rollouts per prompt, advantages relative to the group
    steps: int = 80
    prompts_per_step: int = 2
    num_generations: int = 8               # rollouts per prompt (GRPO's G)
    lr: float = 1e-4
    beta: float = Field(0.04, gt=0.0)      # KL penalty to the pretrained model (TRL's default is 0: none)
    max_grad_norm: float = 1.0
    num_iterations: int = Field(1, ge=1)   # optimizer steps per batch of rollouts (GRPO's mu; > 1 reuses each
    #                                        rollout with TRL's clipped importance ratio)
    scale_rewards: Literal["group", "batch", "none"] = "group"   # advantages divided by the group's reward std
    #                                        ("group", TRL's default), the batch's, or not at all
    checkpoint_every: int = 10             # steps between resumable checkpoints
    monitor_every: int = 20                # steps between the independent measures on held-out prompts (0 = off)
    monitor_prompts: int = 4               # ... on this many prompts, 2 samples each
    # ---- evaluation: the monitor on valid captions, the result on test captions; the gate
    eval_split: Literal["valid", "test"] = "test"   # valid while choosing settings; test for the result
    eval_prompts: int = 16                 # prompts of each held-out split (valid for the monitor, test for the result)
    eval_samples: int = 4                  # per prompt and model; diversity needs >= 2
    max_kl_per_code: float = 0.1           # KL(post-trained || pretrained) per generated code above this = drifted
    #                                        (per code, so one bound serves every piece length: 0.1 x 400 codes
    #                                        of a 2 s tiny piece = 40 nats a piece)
    best_of_n_max: int = 4                 # the best-of-n comparison's n at most
    independent_samples: int = Field(2, ge=1)  # per prompt and model, the first pieces the independent evaluator
    #                                            (musicnn, ~0.25 s a 10 s piece on 2 cores) reads for the gate
    # ---- the gate (a blocking asset check on lyra_rlaif; orchestration/defs/asset_checks.py)
    gate_min_gain: float | None = 0.0      # the gain's 95 % interval must lie above this (None: rule off)
    gate_max_diversity_loss: float = 0.2   # diversity may fall by at most this share (collapse = a hacked reward)
    gate_max_more_silent: float = 0.1      # the share of near-silent pieces may rise by at most this
    # a refusal is a normal outcome (a warning: the post-trained model stays an unpromoted candidate and the
    # pretrained Lyra is what gets served); True makes it fail the run, for a team that requires post-training
    gate_refusal_fails_run: bool = False
    gate_judge_p: float = 0.05             # refused when the judge hears the prompt's instrument less often after
    #                                        post-training than before, one-sided exact McNemar p below this
    bootstrap: int = 2000

    @model_validator(mode="after")
    def _check(self):
        if self.eval_samples < 2:
            raise ValueError("eval_samples must be >= 2 (diversity compares generations of one prompt)")
        if self.reward != "realism" and ":" not in self.reward:
            raise ValueError("reward must be 'realism' or 'package.module:factory'")
        return self
