"""Lyra: the text-to-music transformer over OmniCodec tokens.

    from components.lyra.model import LyraForMusicGeneration       # also: AutoModel.from_pretrained(path)
    model = LyraForMusicGeneration.from_pretrained("data/models/lyra")
    from components.lyra.conditioners import Conditions
    from components.lyra.sampling import Sampler, SamplingParams, code_log_probs
    out = Sampler(model, SamplingParams()).generate(Conditions.build(text_embeddings, seconds_total=10.0), 500)
    from components.lyra.generation import generate_codes, sampling_params

Modules: delay (MusicGen's delay pattern), conditioners (the conditions of a piece as one object:
text, timing; per-condition dropout; how each enters the model), model (the transformer, one step
for every weight format, HF-compatible), decoder (fast weight formats of that step for decoding:
transposed, int8), data (training windows), train (`lyra lm train`, DeepSpeed), sampling
(KV-cached generation, CFG, top-k/p, windowed continuation; exact log-probs of given codes),
generation (codes for prompts: the library under `lyra generate`, components/generate/), sample
(`lyra lm sample`), conditioning (the probe that measures whether the text matters), text (prompt
embedding); decoding codes to audio is OmniCodec's (components/omnicodec/decoding.py).
"""
