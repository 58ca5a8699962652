"""The `rlaif` params section: post-training Lyra with GRPO (TRL) against a reward model.

Defaults are the `tiny` profile (2 CPU cores, well under the 2.5 min the stage may add to the demo):
    30 steps * 2 prompts * 4 rollouts of 2 s (100 frames at 50 Hz, one 128-frame window) = 240 rollouts
Evaluation: 16 held-out prompts * 2 samples from the pretrained and from the post-trained model,
plus best-of-n from the pretrained model at the same KL.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from components.config import StageConfig


class RLAIFConfig(StageConfig):
    seed: int = 0
    # ---- the reward: "realism" (fitted here, see realism.py) or "package.module:factory", called as
    #      factory(reward_model, device) -> score(audio list, sample_rate) -> list[float] (ORAQL's adapter)
    reward: str = "realism"
    reward_model: str | None = None        # the reward model's folder, handed to the factory
    realism_clips: int = 48                # real training clips the realism reward is fitted on
    # ---- prompts: distinct training captions, plus one prompt a line from this file (embedded with MiniLM)
    prompt_file: str | None = None
    seconds: float = 2.0                   # length of every rollout
    # ---- GRPO (TRL): a group of rollouts per prompt, advantages relative to the group
    steps: int = 30
    prompts_per_step: int = 2
    num_generations: int = 4               # rollouts per prompt (GRPO's G)
    lr: float = 1e-4
    beta: float = Field(0.04, gt=0.0)      # KL penalty to the pretrained model (TRL's default is 0: none)
    max_grad_norm: float = 1.0
    checkpoint_every: int = 10             # steps between resumable checkpoints
    monitor_every: int = 10                # steps between the independent measures on held-out prompts (0 = off)
    monitor_prompts: int = 4               # ... on this many prompts, 2 samples each
    # ---- evaluation on held-out prompts (valid captions) and the gate
    eval_prompts: int = 16
    eval_samples: int = 2                  # per prompt and model; diversity needs >= 2
    max_kl: float = 20.0                   # nats per piece: KL(post-trained || pretrained) above this = drifted
    best_of_n_max: int = 8                 # the best-of-n comparison's n at most
    bootstrap: int = 2000

    @model_validator(mode="after")
    def _check(self):
        if self.eval_samples < 2:
            raise ValueError("eval_samples must be >= 2 (diversity compares generations of one prompt)")
        if self.reward != "realism" and ":" not in self.reward:
            raise ValueError("reward must be 'realism' or 'package.module:factory'")
        return self
