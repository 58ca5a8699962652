"""The audit stage as the pipeline sees it (components/common/stage.py)."""

from components.common.stage import Stage

STAGES = (
    Stage(
        name="oraql_audit", group="audit",
        description="ORAQL checked against an evaluator nobody here trained (musicnn): per-system agreement "
                    "(Spearman over real, codec, Lyra variants, best-of-n, RLAIF, untrained) and real-vs-generated "
                    "detection (ROC AUC, ORAQL vs a probe on the independent embedding).",
        argv=("evaluate", "oraql-audit", "--lyra", "data/models/lyra", "--rlaif", "data/models/lyra_rlaif",
              "--oraql", "data/models/oraql", "--codec", "data/models/omnicodec", "--tokens", "data/tokens",
              "--curated", "data/curated", "--out", "data/eval/oraql_audit"),
        deps=("data/models/lyra", "data/models/lyra_rlaif", "data/models/oraql", "data/models/omnicodec",
              "data/tokens", "data/curated"),
        outs=("data/eval/oraql_audit",),
        params="oraql_audit", config="components.audit.oraql_audit:OraqlAuditConfig",
        priority=-2,
    ),
)
