"""Typed configuration of OmniCodec: the architecture (saved as the model's config.json), the
`codec` params section (architecture + training) and the `codec_eval` section.

Defaults are the `tiny` profile: it trains on 2 CPU cores in about three minutes. The default
architecture of the `gpu`/`cluster` profiles is `CodecModelConfig.gpu_default()`.

Bitrate of the default layout (see bitrate.py):
    hop = patch_size * prod(strides) = 4 * (2*3*4*5) = 480 samples -> 24000 / 480 = 50 frames/s
    4 codebooks * log2(1024) = 40 bits/frame -> 50 * 40 = 2000 bit/s = 2.0 kbps
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from components.config import StageConfig
from components.omnicodec.bitrate import bitrate_kbps


class CodecModelConfig(StageConfig):
    """What an OmniCodec *is*: everything needed to rebuild the network from config.json."""

    sample_rate: int = 24_000
    patch_size: int = 4              # samples folded into channels before the first conv: the costliest layers
                                     # then run at 6 kHz instead of 24 kHz (4x fewer multiply-adds there)
    strides: list[int] = Field(default_factory=lambda: [2, 3, 4, 5])  # 4 * 120 = 480-sample hop -> 50 Hz
    channels: int = 8                # encoder width after the first conv; doubles at every stride (8 -> 128)
    decoder_channels: int = 128      # decoder width at the latent; halves at every stride (128 -> 8)
    latent_dim: int = 64             # D: encoder output / decoder input channels
    residual_dilations: list[int] = Field(default_factory=lambda: [1, 3, 9])  # receptive field grows 3x per unit
    residual_kernel_size: int = 7
    residual_compress: int = 2       # residual units run their k-tap conv at C/2 channels: half the cost (SEANet)
    activation: Literal["snake", "elu"] = "snake"
    upsampling: Literal["nearest", "transposed"] = "nearest"   # decoder upsampling: resize-conv or transposed conv
    output_stage: Literal["patches", "interpolate"] = "interpolate"  # how the decoder reaches the sample rate:
    #   "interpolate" upsamples P-fold linearly and ends with a conv at full rate; "patches" unfolds P
    #   channels into P samples, whose P phases image the music's band around multiples of sr/P:
    #   hiss where the input is silent (tiny: ViSQOL 2.85 -> 3.65, mel distance 1.11 -> 0.88)
    num_codebooks: int = 4           # K: 4 x 10 bits x 50 Hz = 2.0 kbps at full depth
    codebook_size: int = 1024        # 2^10 entries -> 10 bits per code
    codebook_dim: int = 8            # factorised lookup space (DAC: 8)
    code_lookup: Literal["cosine", "euclidean"] = "cosine"  # cosine = DAC's l2-normalised lookup
    code_centring: bool = True       # look codes up relative to a running mean of the projected latents
    codebook_decay: float = 0.99     # EMA of the k-means codebook updates (~100-step memory)
    quantizer_dropout: float = 0.5   # share of items trained with n ~ U{1..K} stages (one model, K bitrates)

    @model_validator(mode="after")
    def _check(self):
        if self.decoder_channels % (2 ** len(self.strides)):
            raise ValueError("decoder_channels must be divisible by 2**len(strides) (it halves at each stride)")
        if self.codebook_size < 2 or self.num_codebooks < 1:
            raise ValueError("need num_codebooks >= 1 and codebook_size >= 2")
        return self

    @property
    def hop_length(self) -> int:
        return self.patch_size * math.prod(self.strides)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def bitrate_kbps(self, n_quantizers: int | None = None) -> float:
        return bitrate_kbps(self.sample_rate, self.hop_length, n_quantizers or self.num_codebooks, self.codebook_size)

    @classmethod
    def gpu_default(cls) -> "CodecModelConfig":
        """The full-size architecture (gpu/cluster profiles and the speed benchmark)."""
        # a light encoder and a wider decoder: the decoder is where quality is made (DAC does the same);
        # 10 s of audio costs ~10 GMAC to encode + decode, ~4x less than EnCodec's architecture
        return cls(channels=16, decoder_channels=512, latent_dim=128)


class CodecConfig(StageConfig):
    """The `codec` params section: architecture + how to train it."""

    model: CodecModelConfig = Field(default_factory=CodecModelConfig)
    seed: int = 0
    nproc: int = 2                   # processes per node; > 1 relaunches under torchrun (gloo on CPU, nccl on GPU);
                                     # tiny: one process per core
    steps: int = 1000                # optimizer steps (tiny: 1000 x ~0.15 s on 2 idle cores ~ 2.5 min)
    batch_size: int = 4              # crops per process and step (global batch = 4 x 2 processes = 8)
    crop_seconds: float = 0.4        # 0.4 s = 20 frames per crop; rounded down to a multiple of the hop
    lr: float = 1e-3
    betas: tuple[float, float] = (0.8, 0.99)   # DAC/HiFi-GAN's Adam betas for GAN training
    lr_gamma: float = 0.9995         # exponential decay per step (0.9995^1000 ~ 0.61)
    grad_clip: float = 1000.0        # on the generator grad norm; a safety net, not a regulariser
    # ---- losses ---------------------------------------------------------------------------------
    mel_weight: float = 15.0         # multi-scale log-mel L1 (DAC weighs it 15)
    mel_floor: float = 1e-5          # power floor of the training loss's log-mel (the eval metric keeps 1e-5)
    waveform_weight: float = 0.0     # L1 on samples (helps SI-SDR; off by default, as in DAC)
    commitment_weight: float = 0.25
    fit_weight: float = 1.0          # each RVQ stage's output fits its residual (relative error; see quantizer.py)
    mel_windows: list[int] = Field(default_factory=lambda: [32, 64, 128, 256, 512, 1024, 2048])
    mel_bins: list[int] = Field(default_factory=lambda: [5, 10, 20, 40, 80, 160, 320])
    # ---- adversarial part: switchable and warm-started --------------------------------------------
    adversarial: bool = True
    adv_start_step: int = 900        # the generator learns from the mel loss alone first (tiny: last 100 steps)
    adv_weight: float = 1.0
    feature_weight: float = 2.0      # feature matching (DAC: 2)
    disc_channels: int = 8           # width of the discriminators' first layers (a GAN step costs ~3 G steps on CPU)
    mpd_periods: list[int] = Field(default_factory=lambda: [2, 3, 5])            # HiFi-GAN/DAC: [2, 3, 5, 7, 11]
    stft_windows: list[int] = Field(default_factory=lambda: [1024])              # EnCodec: [2048, 1024, 512]
    # ---- codebook maintenance ---------------------------------------------------------------------
    kmeans_iters: int = 5            # k-means rounds of the data initialisation of each codebook
    init_batches: int = 4            # batches of latents gathered for the initialisation
    dead_code_interval: int = 25     # every N steps, codes unused in the last N steps are replaced
    dead_code_threshold: float = 1.0
    # ---- bookkeeping ------------------------------------------------------------------------------
    checkpoint_every: int = 250      # steps between resumable checkpoints (atomic)
    keep_checkpoints: int = 2
    log_every: int = 25
    valid_every: int = 500           # mel distance on validation crops (0 = only at the end)
    valid_clips: int = 8
    num_workers: int = 0             # DataLoader workers reading crops (0 = main process)
    bf16: bool = True                # bf16 autocast on GPU (ignored on CPU)
    n_examples: int = 3              # audio examples + spectrograms saved with the model

    @model_validator(mode="after")
    def _check(self):
        if len(self.mel_windows) != len(self.mel_bins):
            raise ValueError("mel_windows and mel_bins must have the same length")
        if self.crop_seconds * self.model.sample_rate < self.model.hop_length:
            raise ValueError("crop_seconds is shorter than one hop")
        return self

    @property
    def crop_samples(self) -> int:
        hop = self.model.hop_length
        return max(hop, int(self.crop_seconds * self.model.sample_rate) // hop * hop)


class CodecEvalConfig(StageConfig):
    """The `codec_eval` params section."""

    n_quantizers: list[int] = Field(default_factory=list)  # bitrates to evaluate; empty = 1..K
    max_clips: int = 8               # held-out clips evaluated (ViSQOL costs ~1 s per 10 s clip)
    clip_seconds: float = 5.0        # evaluate the first N seconds of each clip (0 = whole clip)
    visqol: bool = True              # off = skip ViSQOL (mel distance / SI-SDR only), e.g. in quick tests
    n_examples: int = 2              # audio examples written to the eval folder
    # the codec gate's `codes_carry_the_clip` rule: decoding from another clip's codes must be at
    # least this much worse (mel distance) than from the clip's own; None = rule off
    gate_min_information_gap: float | None = 0.05
