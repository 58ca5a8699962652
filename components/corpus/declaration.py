"""The corpus stage as the pipeline sees it (components/common/stage.py)."""

from components.common.stage import Stage

STAGES = (
    Stage(
        name="corpus", group="corpus",
        description="The music the lifecycle learns from (params corpus.source): the offline, licence-clean demo "
                    "corpus (music21 scores rendered under several GM instruments), or a team's library.",
        argv=("corpus", "build", "--out", "data/corpus"),
        deps=(), outs=("data/corpus",), params="corpus", source_field="source",
        config="components.corpus.config:CorpusConfig",
    ),
)
