"""The real music a generated set is compared with, made the way the generated set was made."""

from __future__ import annotations

import numpy as np


def codec_round_trip(tokens, split: str, codec, seconds: float, batch: int = 32) -> list[np.ndarray]:
    """Every `split` clip's first `seconds`, decoded by the codec from its token codes: real music that went
    through the codec, as every generation does (so the codec's own sound is not counted against a model)."""
    from components.omnicodec.decoding import decode_in_batches
    from components.tokens.dataset import TokenDataset

    max_frames = int(round(seconds * codec.frame_rate))
    return decode_in_batches(codec, [np.asarray(c.codes[:, :max_frames]) for c in TokenDataset(tokens, split=split)],
                             batch)
