"""OmniCodec's stages as the pipeline sees them (components/common/stage.py)."""

from components.common.stage import Gate, Model, Stage

STAGES = (
    Stage(
        name="omnicodec", group="omnicodec",
        description="Train the OmniCodec neural audio codec (SEANet + factorised RVQ + GAN losses) on curated clips.",
        argv=("codec", "train", "--curated", "data/curated", "--out", "data/models/omnicodec"),
        deps=("data/curated",), outs=("data/models/omnicodec",), params="codec",
        config="components.omnicodec.config:CodecConfig",
        pool="gpu", distributed=True,
        registers=Model("omnicodec", evaluations=("omnicodec_eval",)),
    ),
    Stage(
        name="omnicodec_eval", group="omnicodec",
        description="ViSQOL, mel distance, SI-SDR and codebook usage of OmniCodec on held-out pieces, per bitrate.",
        argv=("codec", "eval", "--model", "data/models/omnicodec", "--curated", "data/curated", "--out", "data/eval/omnicodec"),
        deps=("data/models/omnicodec", "data/curated"), outs=("data/eval/omnicodec",),
        params="codec_eval", config="components.omnicodec.config:CodecEvalConfig",
        gates=(Gate("codec_gate", "promotion gate: beats the untrained codec, its codes carry the clip, and it does not "
                    "regress on the codec production holds in the registry (else the last accepted version in this "
                    "instance)", "components.omnicodec.gates:codec_gate",
                    numbers=("mel_distance", "untrained.mel_distance", "visqol", "untrained.visqol",
                             "code_information_mel_gap", "bitrate_kbps")),),
    ),
)
