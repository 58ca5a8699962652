"""The conditioning judge's stage as the pipeline sees it (components/common/stage.py)."""

from components.common.stage import Stage

STAGES = (
    Stage(
        name="conditioning_judge", group="judge",
        description="An audio classifier (instrument, collection) trained on real decoded music of training pieces only: "
                    "the independent judge of Lyra's conditioning.",
        argv=("judge", "train", "--tokens", "data/tokens", "--codec", "data/models/omnicodec", "--curated", "data/curated",
              "--out", "data/models/judge"),
        deps=("data/tokens", "data/models/omnicodec", "data/curated"), outs=("data/models/judge",), params="judge",
        config="components.judge.config:JudgeConfig",
        priority=-1,
    ),
)
