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

from components.captioning.captioner import Captioner, TemplateCaptioner
from components.captioning.tags import ClipTags
from components.captioning.text_encoder import TextEncoder

__all__ = ["Captioner", "ClipTags", "TemplateCaptioner", "TextEncoder"]
