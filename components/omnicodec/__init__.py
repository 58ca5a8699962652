"""OmniCodec, the neural audio codec of the Lyra platform.

    from components.omnicodec import load_codec
    codec = load_codec("data/models/omnicodec")          # eval mode
    codes = codec.encode(wav)                             # wav [B, 1, T] at codec.sample_rate -> [B, K, frames]
    codes = codec.encode(wav, n_quantizers=2)             # a lower bitrate from the same model
    audio = codec.decode(codes)                           # [B, 1, frames * codec.hop_length]
    codec.bitrate(4)                                      # bits per second with 4 codebooks

Modules: bitrate (arithmetic), layers/seanet (encoder, decoder), quantizer (factorised RVQ),
model (the codec + load/save), discriminators and losses (GAN training), data (random crops),
train / evaluate (the `lyra codec train|eval` stages), coding (encode/decode of user files), decoding
(what a model over its codes needs: load, check compatibility, decode generated pieces).
"""


def __getattr__(name: str):
    # imported on first use, so that reading the stage declaration (declaration.py) loads no model library
    if name in ("CodecConfig", "CodecEvalConfig", "CodecModelConfig"):
        from components.omnicodec import config

        return getattr(config, name)
    if name in ("OmniCodec", "build_codec", "load_codec"):
        from components.omnicodec import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CodecConfig", "CodecEvalConfig", "CodecModelConfig", "OmniCodec", "build_codec", "load_codec"]
