"""The curation stage as the pipeline sees it (components/common/stage.py)."""

from components.common.stage import Check, Stage

STAGES = (
    Stage(
        name="curated_clips", group="curation",
        description="Decoded, mono, resampled, loudness-normalised, de-duplicated clips; rejects quarantined with a reason.",
        argv=("curate", "--input", "data/corpus/audio", "--out", "data/curated", "--parts", "data/parts/curated_clips"),
        part_argv=("curate", "--input", "data/corpus/audio", "--partition", "{partition}", "--previous", "data/curated",
                   "--out", "data/parts/curated_clips/{partition}"),
        deps=("data/corpus",), outs=("data/curated",), params="curation",
        incremental=True,
        config="components.curation.config:CurationConfig",
        checks=(
            Check("manifest_expectations", "Great Expectations suite on manifest.parquet (durations, rate, loudness, "
                  "ids, splits)", "components.curation.checks:manifest_expectations"),
            Check("quarantine_expectations", "Great Expectations suite on quarantine.parquet (known reasons, named files)",
                  "components.curation.checks:quarantine_expectations", blocking=False),
            Check("every_input_accounted_for", "every input file is curated or quarantined with a reason",
                  "components.curation.checks:every_input_accounted_for"),
        ),
    ),
)
