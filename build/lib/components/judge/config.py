"""The `judge` params section. Defaults are the tiny profile (2 CPU cores, ~30 s)."""

from __future__ import annotations

from pydantic import Field

from components.config import StageConfig


class JudgeConfig(StageConfig):
    seed: int = 0
    # What the judge hears: crops of decoded audio (real clips' codes through the codec's decoder,
    # so real and generated music carry the same codec artefacts). Several crops a clip; a piece's
    # answer averages its crops' log-probabilities.
    crop_seconds: float = Field(2.5, gt=0.2)
    crops_per_clip: int = Field(3, ge=1)
    max_clips_per_split: int = Field(200, ge=1)   # tiny: 200 of 370 training clips (decoding is the stage's cost:
    #                                               ~0.15 s a 10 s clip on 2 threads); every valid/test/ood clip
    decode_batch: int = Field(16, ge=1)           # clips decoded at once (memory: 16 x 10 s x 24 kHz floats)
    threads: int = Field(2, ge=1)                 # torch threads (stages run one at a time: one per core)
    # the classifier: standardised features -> multinomial logistic regression; its inverse
    # regularisation is chosen on the `valid` split (test selects nothing)
    c_grid: list[float] = [0.01, 0.03, 0.1, 0.3, 1.0]
    n_mels: int = Field(64, ge=8)
    heads: list[str] = ["instrument", "collection"]
