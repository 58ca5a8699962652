"""Influence's stage as the pipeline sees it (components/common/stage.py)."""

from components.common.stage import Gate, Model, Stage

STAGES = (
    Stage(
        name="lyra_influence", group="influence",
        description="Influence: LoRA fine-tune of the pretrained Lyra with a reference-song conditioner (5 Hz quantised "
                    "bottleneck); influence index, two-choice and copy detectors on held-out pieces, bottleneck sweep.",
        # from the pretrained Lyra: on the tiny profile RLAIF's gain does not hold on test prompts and its gate
        # refuses the post-trained model, which must not be built upon (`lyra influence train --model
        # data/models/lyra_rlaif` starts from an accepted post-trained model)
        argv=("influence", "train", "--model", "data/models/lyra", "--codec", "data/models/omnicodec",
              "--tokens", "data/tokens", "--curated", "data/curated", "--judge", "data/models/judge",
              "--out", "data/models/lyra_influence"),
        deps=("data/models/lyra", "data/models/omnicodec", "data/tokens", "data/curated", "data/models/judge"),
        outs=("data/models/lyra_influence",),
        params="influence", config="components.influence.config:InfluenceConfig", pool="gpu",
        # + the LoRA adapter and the reference conditioner
        registers=Model("lyra_influence", parents=("lyra", "omnicodec"),
                        weights=("*.safetensors", "config.json", "adapter/*")),
        gates=(Gate("influence_gate", "Influence on held-out pieces: the reference raises the influence index (paired, "
                    "vs no reference), two-choice above chance, few copies flagged while the detectors catch spliced "
                    "copies", "components.influence.gates:influence_gate",
                    numbers=("influence_index", "baseline_influence_index", "influence_ci95",
                             "influence_gain_over_no_reference", "influence_gain_over_no_reference_ci95", "two_choice",
                             "two_choice_ci95", "copy_run_p99_seconds", "flagged_generated", "flagged_spliced",
                             "flagged_spliced_reference", "flagged_spliced_training", "bits_per_second",
                             "bits_share_of_codec", "n_references", "evaluator_test_retrieval")),),
    ),
)
