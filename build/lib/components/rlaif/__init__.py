"""RLAIF: Lyra post-trained with feedback from a reward model, through TRL's GRPOTrainer.

Modules: policy (Lyra adapted to TRL at its extension points: rollout_func, per-token log-probs),
rewards (the pluggable batched reward: codes -> audio -> scores), realism (the interim reward until
ORAQL), evaluate (held-out gain with a bootstrap interval, KL, best-of-n at the same KL, diversity,
loudness), train (`lyra rlaif train`), plots.

Plugging in a quality model (ORAQL): give it a factory

    def rlaif_scorer(path: str | None, device: str) -> Callable[[list[np.ndarray], int], list[float]]

that loads the model from `path` and returns a function from mono float32 audio arrays (decoded by
OmniCodec, at the codec's sample rate; lengths vary, a piece may be empty) to one score each, higher
is better; then set `rlaif: {reward: "components.oraql.<module>:rlaif_scorer", reward_model:
data/models/oraql}` in params.yaml and add the model folder to the `lyra_rlaif` row's deps.
"""
