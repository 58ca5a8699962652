"""Lyra: the text-to-music transformer over OmniCodec tokens.

    from components.lyra.model import LyraForMusicGeneration
    model = LyraForMusicGeneration.from_pretrained("data/models/lyra")
    from components.lyra.generate import generate_codes, sampling_params

Modules: delay (MusicGen's delay pattern), model (the transformer, HF-compatible), data (training
windows), train (`lyra lm train`, DeepSpeed), sampling (KV-cached generation, CFG, top-k/p,
windowed continuation), generate (`lyra generate`), sample (`lyra lm sample`), conditioning
(the probe that measures whether the text matters), codec/text (decoding and prompt embedding).
"""
