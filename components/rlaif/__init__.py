"""RLAIF: Lyra post-trained with feedback from a reward model, through TRL's GRPOTrainer.

Modules: policy (Lyra adapted to TRL at its extension points: rollout_func, per-token log-probs),
rewards (the pluggable batched reward: codes -> audio -> scores), realism (the interim reward until
ORAQL), evaluate (held-out gain with a bootstrap interval, KL, best-of-n at the same KL, diversity,
loudness), train (`lyra rlaif train`), plots.
"""
