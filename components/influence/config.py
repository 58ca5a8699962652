"""The `influence` params section: the reference-conditioned fine-tune of Lyra and its evaluation.

Defaults are the `tiny` profile (2 CPU cores; the stage may add ~2 minutes to the demo):
    fine-tune   240 steps * 24 target windows of 32 frames (+ 20 prefix tokens): ~40 s on one core
    evaluator   150 steps of 16 recordings * 2 crops (InfoNCE) on decoded audio of disjoint pieces
    evaluation  8 references (of eval_split) * 3 bottleneck settings * 5 s generations (one guided batch)
Bottleneck: 15 tokens for a 3 s excerpt (5 Hz), 3 residual FSQ stages of 64 codes (4 x 4 x 4 grids)
-> 30 bit/s per codebook, 90 bit/s at most = 4.5 % of the codec's 2 kbps.

Settings chosen on 8 valid references (eval_split=valid; 56 two-choice pairs; the held-out loss on 64
valid windows), from the previous defaults (EMA k-means RVQ, text dropout 0.5, 8 windows of 128 frames):
    the RVQ collapsed within 20 steps (each codebook used 1 of its 64 codes on valid excerpts: every
    reference gave the same prefix, generations were identical across references, two-choice 0.50):
    commitment pulled the encoder onto one code while the zero-initialised outputs gave it no other
    gradient. No commitment + dead-code replacement kept codes alive but steered little (two-choice
    0.52); the residual FSQ (no codebook to collapse) steers: two-choice 0.82, held-out gain +0.005.
    Short target windows (32 frames, 24 per batch, same cost) put more codes where the window's own
    context says little: held-out gain +0.005 -> +0.013 (text dropout 0.5) and +0.008 -> +0.016 (0.9).
    Text dropout 0.9 vs 0.5 at 32 frames: held-out gain +0.016 vs +0.013, two-choice 0.84 vs 0.86 (noise).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.config import StageConfig


class InfluenceConfig(StageConfig):
    seed: int = 0
    # ---- the reference conditioner (components/lyra/reference.py)
    reference_seconds: float = 3.0          # excerpt length (frames = seconds * codec frame rate)
    token_rate_hz: float = 5.0              # bottleneck tokens per second
    codebooks: int = Field(3, ge=1, le=4)   # residual VQ stages (the sweep uses 1..codebooks)
    codebook_size: int = 64
    quantizer: Literal["rvq", "fsq"] = "fsq"   # residual FSQ (fixed grids: nothing to collapse) or the EMA k-means
    #                                            residual VQ (collapsed to one code per codebook here)
    width: int = 64
    # ---- fine-tuning: LoRA on the attention (qkv, proj) + the conditioner; base weights frozen
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_targets: list[str] = ["qkv", "proj"]
    steps: int = 240
    batch: int = 24
    lr: float = 2e-3
    warmup_steps: int = 20
    target_frames: int | None = 32          # target window length in fine-tuning (None: the model's window_frames);
    #                                         short windows: more codes where the window's own context says little
    text_dropout: float = 0.9               # per-condition dropout: text and reference dropped independently; the
    #                                         evaluation generates from the reference alone
    reference_dropout: float = 0.15
    aux_weight: float = 0.1                 # bottleneck loss: commitment_weight * commitment + residual fit (RVQ)
    commitment_weight: float = 0.0          # RVQ only: commitment pulled the encoder onto one code (collapse)
    dead_code_interval: int = 20            # RVQ only: every N steps codes unused since the last check move onto
    #                                         current latents (0: never)
    checkpoint_every: int = 60
    fine_tune_share: float = 0.5            # share of training recordings (by piece) the conditioner sees;
    #                                         the evaluator trains on the rest (disjoint pieces)
    # ---- generation
    seconds: float = 5.0
    cfg_text: float = 3.0
    cfg_reference: float = 3.0
    top_k: int = 250
    temperature: float = 1.0
    # ---- the evaluator (a contrastive encoder on log-mel crops)
    evaluator_steps: int = 150
    evaluator_recordings: int = 24         # training recordings decoded for it (first 10 s clip each)
    evaluator_crop_seconds: float = 2.0
    evaluator_dim: int = 64
    evaluator_members: int = Field(3, ge=1)  # encoders from different seeds; S is their mean cosine (one
    #                                          encoder's two-choice moved 0.66 <-> 0.88 between runs that
    #                                          differed only in float rounding)
    # ---- evaluation on held-out pieces
    eval_split: Literal["valid", "test"] = "test"   # valid while choosing settings; test for the result
    eval_references: int = 8               # held-out recordings (of eval_split) used as references
    ood_references: int = 4                # references from outside the corpus (the ood split)
    independent_references: int = 24       # references for the two-choice on the independent evaluator's embedding
    #                                        (as many as the split has, up to this; 0: off)
    splice_share: float = 0.1              # spliced controls: this share of the reference song pasted in
    max_copy_run_seconds: float = 0.5      # a shared codebook-0 run this long flags a copy
    ngram_seconds: float = 1.0             # hashed n-grams shared with the training set
    mel_null_pairs: int = 200              # valid pairs (different pieces, same instrument) setting the mel detector's threshold
    bootstrap: int = 1000
    # ---- targets (reported) and the gate (the blocking check): None = rule off
    target_influence: float = 0.5
    target_two_choice: float = 0.8
    target_copy_run_p99_seconds: float = 0.5
    target_max_flagged: float = 0.01
    target_min_spliced_flagged: float = 0.9
    gate_min_influence: float | None = 0.0       # the index's paired gain over no reference: its interval above this
    gate_min_two_choice: float | None = 0.5      # two-choice accuracy above chance
    gate_max_flagged: float | None = 0.05        # share of generations flagged as copies
    gate_min_spliced_flagged: float | None = 0.9 # the detectors must catch spliced copies

    @model_validator(mode="after")
    def _check(self):
        if self.reference_seconds * self.token_rate_hz < 1:
            raise ValueError("reference_seconds * token_rate_hz must give at least one bottleneck token")
        if not 0.0 < self.fine_tune_share < 1.0:
            raise ValueError("fine_tune_share must be in (0, 1): the evaluator needs pieces of its own")
        if self.target_frames is not None and self.target_frames < 1:
            raise ValueError("target_frames must be >= 1 (or None for the model's window)")
        if self.eval_references < 2:
            raise ValueError("eval_references must be >= 2 (the two-choice test pairs references)")
        return self
