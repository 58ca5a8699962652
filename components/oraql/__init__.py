"""ORAQL, the Lyra platform's music-quality model: audio of any length -> overall, fidelity and
coherence scores on [0, 1], with no reference.

    from components.oraql import OraqlReward, load_oraql, score_batch
    reward = OraqlReward("data/models/oraql", codec="data/models/omnicodec")
    reward.from_audio([wav], sample_rate=24000)          # RLAIF reward, batched
    score_batch(load_oraql("data/models/oraql"), [wav], 24000)   # [B, 3] overall, fidelity, coherence

Modules: config (params), degrade (damage functions), ladder (graded labels from curated clips and
Lyra checkpoints), ratings (human tables), model (what ORAQL is), train (the `oraql` stage),
evaluate (correlations with bootstrap intervals), score (`lyra score`, the reward), best_of_n
(`lyra generate --best-of N` and the `lyra_best_of_n` asset), plots, cli.
"""


def __getattr__(name: str):
    # imported on first use, so that reading the stage declaration (declaration.py) loads no model library
    if name in ("Oraql", "load_oraql"):
        from components.oraql import model

        return getattr(model, name)
    if name in ("OraqlReward", "score_batch"):
        from components.oraql import score

        return getattr(score, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Oraql", "OraqlReward", "load_oraql", "score_batch"]
