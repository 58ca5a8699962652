"""The token-shard stage as the pipeline sees it (components/common/stage.py)."""

from components.common.stage import Check, Stage

STAGES = (
    Stage(
        name="token_shards", group="tokens",
        description="The curated corpus encoded once with OmniCodec into memory-mappable shards + index.",
        argv=("tokens", "build", "--codec", "data/models/omnicodec", "--codec-eval", "data/eval/omnicodec",
              "--curated", "data/curated", "--captions", "data/captions", "--out", "data/tokens",
              "--parts", "data/parts/token_shards"),
        # reading the codec's evaluation puts the codec gate (a blocking check on it) before the shards
        part_argv=("tokens", "build", "--codec", "data/models/omnicodec", "--curated", "data/curated", "--captions",
                   "data/captions", "--partition", "{partition}", "--previous", "data/tokens",
                   "--out", "data/parts/token_shards/{partition}"),
        deps=("data/models/omnicodec", "data/eval/omnicodec", "data/curated", "data/captions"), outs=("data/tokens",),
        incremental=True,          # reuses the shards of unchanged clips from its previous output
        params="tokens", config="components.tokens.config:TokensConfig",
        pool="gpu",                # encodes on the codec's device (cuda in the gpu / cluster profiles)
        checks=(
            Check("every_clip_in_exactly_one_shard", "every curated clip is in exactly one shard",
                  "components.tokens.checks:every_clip_in_exactly_one_shard_check"),
            Check("codes_in_range", "all codes lie inside the codebook", "components.tokens.checks:codes_in_range_check"),
        ),
    ),
)
