"""Typed configuration of ORAQL: the `oraql` params section (ladder, labels, model, training, gate)
and `best_of_n` (the best-of-n asset).

Defaults are the `tiny` profile. Cost, measured one part at a time on one core (the two stages
together must add at most 1.5 minutes to `make demo` on 2 cores):
    ladder       96 train + 12 valid + 16 test crops of 5 s (clips subsampled by piece split, so the cost does
                 not grow with the corpus; a small corpus gives further crops of its clips) x 26 rungs,
                 40 % of them also 2 OmniCodec rungs: ~13 s for 66 crops, ~24 s for 124
    generations  3 Lyra checkpoints x (12 + 3 + 5) prompts of 5 s, one batch each: ~11 s
    training     500 steps x 32 items [64 mels x 225 frames], 3-block conv encoder, ~22 ms a step: ~11 s
    best-of-n    6 prompts x 8 candidates of 5 s in one batch, decoded and scored: ~15 s with start-up
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.config import StageConfig

SIGNAL_KINDS = ("codec", "noise", "clipping", "band_limit", "dropouts", "warp")
STRUCTURAL_KINDS = ("shuffle", "loop", "tempo_jump")
KINDS = (*SIGNAL_KINDS, *STRUCTURAL_KINDS)


class LadderConfig(StageConfig):
    """Versions of each source clip, one list of strengths per kind (weakest first).

    Signal damage is labelled by a full-reference measure (see `fidelity_from_mel`), structural
    damage by its strength (see `coherence_floor`)."""

    codec_quantizers: list[int] = [2, 1]             # OmniCodec codebooks kept (K=4 at 50 Hz: 1.0, 0.5 kbps)
    codec_share: float = 0.4        # share of the source clips that get codec rungs (decoding is the ladder's
    #                                 dearest rung: ~0.15 s per 5 s per depth on one core)
    noise_snr_db: list[float] = [30.0, 20.0, 10.0, 0.0]   # white noise at these signal-to-noise ratios
    clipping_level: list[float] = [0.5, 0.25, 0.1]  # hard clip at this share of the peak, then level-matched
    band_limit_hz: list[float] = [4000.0, 2000.0, 1000.0]  # 8th-order Butterworth low-pass cut-offs
    dropouts_share: list[float] = [0.05, 0.15, 0.3] # share of the time silenced, in 40-200 ms gaps
    warp_cents: list[float] = [15.0, 40.0, 100.0]    # wow: sinusoidal pitch/time wobble of this depth, 0.5-2 Hz
    shuffle_share: list[float] = [0.34, 0.67, 1.0]   # share of beats (quarter bars) moved out of order
    loop_share: list[float] = [0.34, 0.67, 1.0]      # share of the clip replaced by one looped half-bar
    tempo_jump: list[float] = [0.34, 0.67, 1.0]      # strength s: from a random point on, tempo x (1 + 0.6 s)

    def strengths(self, kind: str) -> list[float]:
        return {"codec": self.codec_quantizers, "noise": self.noise_snr_db, "clipping": self.clipping_level,
                "band_limit": self.band_limit_hz, "dropouts": self.dropouts_share, "warp": self.warp_cents,
                "shuffle": self.shuffle_share, "loop": self.loop_share, "tempo_jump": self.tempo_jump}[kind]


class OraqlModelConfig(StageConfig):
    """What an ORAQL model is: log-mel front-end -> conv encoder -> pooling + structure -> 3 heads."""

    sample_rate: int = 16000        # the front-end's rate; any input is resampled to it
    n_mels: int = 64
    n_fft: int = 1024
    hop_length: int = 320           # 20 ms frames (50 per second)
    channels: list[int] = [64, 96, 128]   # one conv block per entry, each halving the frame rate: 50 -> 6.25 Hz
    kernel_size: int = 5
    head_hidden: int = 64
    window_seconds: float = 5.0     # longer audio is scored in windows of this length (what training sees)
    dropout: float = 0.1


class OraqlConfig(StageConfig):
    """The `oraql` params section."""

    seed: int = 0
    clip_seconds: float = 5.0       # every ladder item is a crop of this length
    # ---- which clips (subsampled by piece split, so the stage's cost does not grow with the corpus)
    sources: dict[str, int] = Field(default_factory=lambda: {"train": 96, "valid": 12, "test": 16})
    ladder: LadderConfig = Field(default_factory=LadderConfig)
    held_out_type: Literal[KINDS] = "clipping"   # never trained or selected on: does ORAQL judge more than its ladder?
    # ---- labels on [0, 1] (1 = the clean curated clip); overall = fidelity * coherence
    fidelity_from_mel: float = 1.0  # fidelity = exp(-d / this), d = log10-mel L1 distance to the clean clip (the
    #                                 model's 64-mel spectrogram at 16 kHz): 0.1 -> 0.90, 0.5 -> 0.61, 1.0 -> 0.37
    coherence_floor: float = 0.3    # structural damage of strength s in (0, 1] -> coherence 1 - (1 - floor) * s
    # ---- generations: Lyra checkpoints, early to late. Lyra's music reaches the ear through OmniCodec, so a
    # generation is at best as good as a real clip's codec round trip (the "codec ceiling": the median label of the
    # deepest codec rung on training clips); label = ceiling * (early + (late - early) * training progress)
    generation_prompts: dict[str, int] = Field(default_factory=lambda: {"train": 12, "valid": 3, "test": 5})
    generation_label_early: float = 0.2   # share of the ceiling for the checkpoint at initialisation (step 0)
    generation_label_late: float = 0.8    # share of the ceiling for the checkpoint with the lowest held-out loss
    generation_cfg: float = 3.0
    # ---- human ratings (optional): tables imported by components/oraql/ratings.py
    ratings: str | None = None            # CSV/parquet: audio, rater, score, scale_min, scale_max
    pairwise: str | None = None           # CSV/parquet: audio_a, audio_b, rater, choice (a | b)
    # ---- model and training
    model: OraqlModelConfig = Field(default_factory=OraqlModelConfig)
    steps: int = 500
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.01
    train_crop: float = 0.9         # each batch sees a random window of this share of the items' frames
    rank_weight: float = 0.5        # weight of the pairwise ranking loss (within-batch pairs, and A/B choices)
    rank_margin: float = 0.05       # label difference below which two items are not ranked
    eval_every: int = 100           # valid per-clip Spearman; the best step is the saved model
    checkpoint_every: int = 100
    threads: int = 1                # torch threads (1 on tiny: 2 spun ~20x the CPU when the cores were shared)
    # ---- evaluation
    bootstrap: int = 1000           # resamples (of source clips) for the 95 % intervals
    pairwise_margin: float = 0.1    # pairs of test items whose labels differ by at least this are ranked
    # ---- the checks on the `oraql` asset. Blocking gate: ORAQL is better than the same network untrained, by
    # its bootstrap intervals (per-clip Spearman, the held-out type) and better than chance on pairs.
    gate_beats_untrained: bool = True
    # Non-blocking (warning) check: the tiny-profile targets
    target_spearman_clip: float = 0.80
    target_spearman_system: float = 0.95
    target_pairwise: float = 0.80
    target_held_out_spearman: float = 0.60
    @model_validator(mode="after")
    def _check(self):
        for kind in KINDS:
            if not self.ladder.strengths(kind):
                raise ValueError(f"ladder.{kind}: at least one strength")
        for name in ("sources", "generation_prompts"):
            bad = set(getattr(self, name)) - {"train", "valid", "test"}
            if bad:
                raise ValueError(f"{name}: unknown split(s) {sorted(bad)}")
        if not 0 <= self.generation_label_early < self.generation_label_late < 1:
            raise ValueError("need 0 <= generation_label_early < generation_label_late < 1")
        if not 0 <= self.coherence_floor < 1:
            raise ValueError("coherence_floor must be in [0, 1)")
        return self


class BestOfNConfig(StageConfig):
    """The `best_of_n` params section: the `lyra_best_of_n` asset."""

    n_values: list[int] = [1, 2, 4, 8]   # the curve; the largest is how many candidates each prompt gets
    n_prompts: int = 6              # held-out (test) captions; 6 x 8 candidates x 5 s in one batch
    seconds: float = 5.0
    independent: bool = True        # also read every candidate with the independent evaluator (components/evaluation)
    seed: int = 0
    temperature: float = 1.0        # sampling as `lyra generate` does it (generate section's defaults)
    top_k: int = 250
    cfg: float = 3.0

    @model_validator(mode="after")
    def _check(self):
        if sorted(self.n_values) != self.n_values or self.n_values[0] != 1:
            raise ValueError("n_values must be increasing and start at 1")
        return self
