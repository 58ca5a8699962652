"""ORAQL's stages as the pipeline sees them (components/common/stage.py)."""

from components.common.stage import Gate, Model, Stage

# the held-out figures both ORAQL checks show beside their verdicts
ORAQL_NUMBERS = ("spearman_clip", "spearman_clip_ci95", "spearman_system", "spearman_system_ci95", "pairwise_accuracy",
                 "pairwise_accuracy_ci95", "held_out_spearman", "held_out_spearman_ci95", "untrained_spearman_clip",
                 "untrained_held_out_spearman", "n_test_items", "n_test_clips")

STAGES = (
    Stage(
        name="oraql", group="oraql",
        description="ORAQL music-quality model: a graded ladder of curated clips + Lyra generations early to late "
                    "(+ human ratings), selected on valid, correlations on held-out pieces.",
        argv=("oraql", "train", "--curated", "data/curated", "--codec", "data/models/omnicodec",
              "--lyra", "data/models/lyra", "--tokens", "data/tokens", "--out", "data/models/oraql"),
        deps=("data/curated", "data/models/omnicodec", "data/models/lyra", "data/tokens"), outs=("data/models/oraql",),
        params="oraql", config="components.oraql.config:OraqlConfig",
        config_inputs=("ratings", "pairwise"),    # human tables, e.g. the listening room's export (components/serving)
        priority=1,
        registers=Model("oraql", evaluations=("lyra_best_of_n",), parents=("omnicodec", "lyra")),
        gates=(
            Gate("oraql_gate", "ORAQL beats the same network untrained on held-out pieces (per-clip Spearman interval "
                 "above it, and on the damage type never trained on) and chance on pairs (interval above 0.5)",
                 "components.oraql.evaluate:gate_decisions", numbers=ORAQL_NUMBERS),
            Gate("oraql_targets", "issue 11's targets on the tiny profile: per-clip Spearman >= 0.80, per-system >= 0.95, "
                 "pairwise >= 0.80, held-out type >= 0.6 (a warning)", "components.oraql.evaluate:target_decisions",
                 numbers=ORAQL_NUMBERS, blocking=False),
        ),
    ),
    Stage(
        name="lyra_best_of_n", group="oraql",
        description="Best-of-n generation on held-out prompts: ORAQL's pick for n = 1, 2, 4, 8 (mean, worst, share "
                    "below the n = 1 median), and an independent judge on the same picks.",
        argv=("oraql", "best-of-n", "--lyra", "data/models/lyra", "--codec", "data/models/omnicodec",
              "--tokens", "data/tokens", "--oraql", "data/models/oraql", "--out", "data/eval/lyra_best_of_n",
              "--judge", "components.oraql.best_of_n:conditioning_judge", "--judge-model", "data/models/judge"),
        deps=("data/models/lyra", "data/models/omnicodec", "data/tokens", "data/models/oraql", "data/models/judge"),
        outs=("data/eval/lyra_best_of_n",),
        params="best_of_n", config="components.oraql.config:BestOfNConfig",
        priority=-1,
    ),
)
