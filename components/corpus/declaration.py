"""The corpus stage as the pipeline sees it (components/common/stage.py)."""

from components.common.stage import Stage

STAGES = (
    Stage(
        name="demo_corpus", group="corpus",
        description="Offline, licence-clean demo corpus: music21 scores rendered under several GM instruments.",
        argv=("corpus", "demo", "--out", "data/corpus"),
        deps=(), outs=("data/corpus",), params="corpus",
        config="components.corpus.config:CorpusConfig",
    ),
)
