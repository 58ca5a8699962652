"""The captions stage as the pipeline sees it (components/common/stage.py)."""

from components.common.stage import Check, Stage

STAGES = (
    Stage(
        name="captions", group="captioning",
        description="Tags (tempo, key, metre, loudness, brightness, instrument) -> varied captions + sentence embeddings.",
        argv=("caption", "--curated", "data/curated", "--out", "data/captions", "--parts", "data/parts/captions"),
        part_argv=("caption", "--curated", "data/curated", "--partition", "{partition}", "--previous", "data/captions",
                   "--out", "data/parts/captions/{partition}"),
        deps=("data/curated",), outs=("data/captions",), params="captions", incremental=True,
        config="components.captioning.config:CaptionConfig",
        checks=(Check("every_clip_captioned", "one caption row and one finite embedding per curated clip",
                      "components.captioning.checks:every_clip_captioned"),),
    ),
)
