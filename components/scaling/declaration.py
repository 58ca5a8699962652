"""The scaling-law sweep's stage as the pipeline sees it (components/common/stage.py)."""

from components.common.stage import Gate, Stage

STAGES = (
    Stage(
        name="lyra_scaling", group="scaling",
        description="Scaling laws: a sweep of small Lyra runs over sizes and token budgets, a fitted L(N, D) checked "
                    "on a held-out larger run, the compute-optimal size per FLOP budget and per number of codebooks.",
        argv=("scaling", "sweep", "--tokens", "data/tokens", "--out", "data/eval/scaling"),
        deps=("data/tokens",), outs=("data/eval/scaling",), params="scaling", runs=("lyra_pretrain",),
        config="components.scaling.config:ScalingConfig", extra_params=("lm",),
        pool="gpu", job="scaling",   # not in the lifecycle: minutes of extra training, run when sizing a model
        gates=(Gate("scaling_law_predicts_the_held_out_run", "the fitted L(N, D) predicts the held-out larger run "
                    "(never fitted) within scaling.holdout_max_error, and has a compute-optimal interior "
                    "(A, B, alpha, beta > 0)", "components.scaling.gates:scaling_law_gate",
                    numbers=("holdout.relative_error", "holdout.max_error", "holdout.baseline_relative_error",
                             "holdout.predicted_loss", "holdout.measured_loss", "law.alpha", "law.beta",
                             "intervals.alpha", "intervals.beta"),
                    blocking=False, source="data/eval/scaling/fit.json"),),
    ),
)
