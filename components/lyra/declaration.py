"""Lyra's stages as the pipeline sees them (components/common/stage.py)."""

from components.common.stage import Gate, Model, Stage

STAGES = (
    Stage(
        name="lyra_pretrain", group="lyra",
        description="Pretrain the Lyra text-to-music transformer (delay pattern, text + timing conditioning) with DeepSpeed.",
        argv=("lm", "train", "--tokens", "data/tokens", "--out", "data/models/lyra"),
        deps=("data/tokens",), outs=("data/models/lyra",), params="lm",
        config="components.lyra.config:LMConfig", pool="gpu", distributed=True,
        priority=1,
        registers=Model("lyra", evaluations=("lyra_samples",), parents=("omnicodec",)),
        gates=(Gate("lyra_beats_unigram", "gate: the chosen model's held-out (valid) loss sits below the unigram "
                    "baseline by the configured margin", "components.lyra.gates:pretrain_gate",
                    numbers=("val_loss", "unigram_val_loss", "val_vs_unigram", "test_vs_unigram", "selected_step")),),
    ),
    Stage(
        name="lyra_samples", group="lyra",
        description="Music generated from held-out captions, decoded with OmniCodec, with conditioning metrics.",
        argv=("lm", "sample", "--model", "data/models/lyra", "--codec", "data/models/omnicodec",
              "--tokens", "data/tokens", "--judge", "data/models/judge", "--curated", "data/curated",
              "--out", "data/samples/lyra"),
        deps=("data/models/lyra", "data/models/omnicodec", "data/tokens", "data/models/judge", "data/curated"),
        outs=("data/samples/lyra",),
        params="generate", config="components.lyra.config:GenerateConfig",
        priority=-1,
        gates=(Gate("judge_hears_the_prompt", "gate: the independent judge hears the prompt more often with the text "
                    "than without (same seeds)", "components.lyra.gates:samples_gate",
                    numbers=("judge_instrument_n", "judge_instrument_accuracy_text", "judge_instrument_accuracy_no_text",
                             "judge_instrument_accuracy_real", "judge_instrument_p_text_vs_no_text",
                             "judge_instrument_share_of_real")),),
    ),
)
