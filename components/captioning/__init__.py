"""Captioning: curated clips -> tags -> varied natural-language captions -> sentence embeddings.

    analysis.py      audio-derived tags: tempo (beat tracking), key (Krumhansl–Schmuckler), metre
                     guess, loudness, brightness, energy
    keys.py          key spelling/parsing, key profiles, MIREX key relations
    style.py         composer -> era, title -> form, GM program -> instrument name
    tags.py          metadata + audio -> ClipTags (both sources kept, one resolved value each)
    captioner.py     the Captioner interface and the default TemplateCaptioner
    text_encoder.py  TextEncoder: offline all-MiniLM-L6-v2, also used by Lyra for prompts
    agreement.py     audio vs metadata: tempo acc1/acc2, key exact/related/MIREX, metre
    stage.py         the `lyra caption` stage; cli.py its command line
"""


def __getattr__(name: str):
    # imported on first use, so that reading the stage declaration (declaration.py) loads no model library
    if name in ("Captioner", "TemplateCaptioner"):
        from components.captioning import captioner

        return getattr(captioner, name)
    if name in ("ClipTags",):
        from components.captioning import tags

        return getattr(tags, name)
    if name in ("TextEncoder",):
        from components.captioning import text_encoder

        return getattr(text_encoder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Captioner", "ClipTags", "TemplateCaptioner", "TextEncoder"]
