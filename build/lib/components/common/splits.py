"""The dataset splits every stage shares, split by piece.

    train   what models learn from
    valid   held-out pieces that select (checkpoints, thresholds, hyper-parameters)
    test    held-out pieces that are scored once, at the end, and select nothing
    ood     pieces never trained on, played by timbres no training track uses (out of distribution)

`train/valid/test` come from fractions of the corpus's pieces; `ood` is built apart (corpus.build).
"""

from __future__ import annotations

FRACTION_SPLITS = ("train", "valid", "test")
SPLITS = (*FRACTION_SPLITS, "ood")
