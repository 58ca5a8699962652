"""The reference conditioner: a few seconds of a reference song -> a handful of prefix tokens.

The bottleneck is what keeps Influence from copying: the excerpt reaches the LM only through a
residual VQ at ~5 Hz with 1-3 small codebooks (MusicGen-Style's design; about 2-7 % of the codec's
bits), too few bits to carry the notes, enough for instrumentation, tempo, key and texture.

    codes [B, K, R]  (R = 150 frames of OmniCodec codes at 50 Hz = 3 s)
      --frozen codec codebooks: sum_k decode_k(code_k)-->   latent [B, R, D_lat]   (the codec's own latent)
      --Linear + LayerNorm-->                               [B, R, c]
      --Conv1d(k=s1, stride=s1), GELU, Conv1d(k=s2, stride=s2)-->   [B, n, c]   n = R / (s1 s2) (50 Hz -> 5 Hz)
      --TransformerEncoder layer-->                         [B, n, c]
      --residual quantizer: n_q stages of V codes, quantizer dropout-->   z_q [B, n, c], codes [B, n_q, n]
          "fsq" (Influence's default): residual finite scalar quantisation, fixed grids (64 = 4 x 4 x 4)
          "rvq": omnicodec's quantizer (factorised, EMA k-means); it collapsed to one code per codebook
                 within 20 fine-tuning steps (the commitment loss pulled the encoder onto one code while
                 the zero-initialised outputs gave it no other gradient), so every reference gave the
                 same prefix
      --Linear-->  prefix [B, n, d]        mean over n --Linear--> step bias [B, d]

    bits per second = n_q * log2(V) * frame_rate / (s1 s2)        e.g. 3 * 6 bits * 5 Hz = 90 bit/s

A dropped reference (classifier-free guidance, training dropout) gets learned null tokens and no
step bias. Quantizer dropout in training (each item keeps its first n ~ U{1..n_q} stages) makes one
conditioner usable at 1, 2 or 3 codebooks (`n_quantizers`), the bottleneck sweep of Influence.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn as nn
from einops import rearrange

from components.omnicodec.quantizer import ResidualVectorQuantizer


def fsq_levels(codebook_size: int) -> list[int]:
    """Levels per dimension of a finite scalar quantizer with `codebook_size` codes: 4s, and a 2 for an
    odd power of two (64 -> [4, 4, 4], 8 -> [4, 2])."""
    bits = int(round(math.log2(codebook_size)))
    if 2 ** bits != codebook_size or bits < 1:
        raise ValueError(f"an FSQ bottleneck needs a power-of-two codebook size, got {codebook_size}")
    return [4] * (bits // 2) + [2] * (bits % 2)


@dataclasses.dataclass
class FSQOutput:
    z_q: torch.Tensor              # [B, c, n]
    codes: torch.Tensor            # [B, n_q, n]
    commitment_loss: torch.Tensor  # 0: a fixed grid needs no commitment
    fit_loss: torch.Tensor         # relative error of the quantized latent vs the encoder's (a diagnostic)


class ResidualFSQ(nn.Module):
    """Residual finite scalar quantisation (Mentzer et al. 2023, "FSQ"; residual as in RVQ): stage k
    projects the residual to len(levels) dims, bounds each to [0, L-1] (sigmoid), rounds it
    (straight-through) and projects the grid point back; the next stage quantizes what is left.

    Codes are grid indices, so every one of the codebook_size codes exists by construction: there is
    no codebook to collapse onto one entry (the EMA k-means RVQ did, within 20 fine-tuning steps).
    Quantizer dropout as in RVQ: in training each item keeps its first n ~ U{1..n_q} stages with
    probability `quantizer_dropout`."""

    def __init__(self, latent_dim: int, num_codebooks: int, codebook_size: int, quantizer_dropout: float):
        super().__init__()
        self.levels = fsq_levels(codebook_size)
        self.codebook_size, self.num_codebooks, self.quantizer_dropout = codebook_size, num_codebooks, quantizer_dropout
        d = len(self.levels)
        self.inp = nn.ModuleList(nn.Linear(latent_dim, d) for _ in range(num_codebooks))
        self.out = nn.ModuleList(nn.Linear(d, latent_dim) for _ in range(num_codebooks))
        # constants, kept out of the state dict and buffers (from_pretrained leaves non-persistent buffers
        # uninitialised: NaN codes after loading, measured)
        self.scale = [float(L - 1) for L in self.levels]
        self.base = [math.prod(self.levels[:i]) for i in range(d)]

    def quantize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[..., d] -> (grid point in [-1, 1] with straight-through gradients [..., d], code [...])."""
        scale = torch.tensor(self.scale, device=x.device, dtype=x.dtype)
        base = torch.tensor(self.base, device=x.device)
        u = torch.sigmoid(x) * scale
        q = u + (u.round() - u).detach()
        return q / scale * 2 - 1, (u.round().long() * base).sum(-1)

    def forward(self, z: torch.Tensor, n_quantizers: int | None = None) -> FSQOutput:
        """z [B, c, n] -> FSQOutput; n_quantizers None in training: quantizer dropout."""
        B = z.shape[0]
        if n_quantizers is None:
            keep_n = torch.full((B,), self.num_codebooks, dtype=torch.long, device=z.device)
            if self.training and self.quantizer_dropout > 0:
                drop = torch.rand(B, device=z.device) < self.quantizer_dropout
                keep_n = torch.where(drop, torch.randint(1, self.num_codebooks + 1, (B,), device=z.device), keep_n)
        else:
            if not 1 <= int(n_quantizers) <= self.num_codebooks:
                raise ValueError(f"n_quantizers must be in 1..{self.num_codebooks}, got {n_quantizers}")
            keep_n = torch.full((B,), int(n_quantizers), dtype=torch.long, device=z.device)
        n_max = self.num_codebooks if self.training else int(keep_n.max())
        x = rearrange(z, "b c n -> b n c")
        residual, z_q, codes = x, torch.zeros_like(x), []
        for k in range(n_max):
            grid, code = self.quantize(self.inp[k](residual))
            part = self.out[k](grid)
            z_q = z_q + part * (keep_n > k).to(x.dtype)[:, None, None]
            residual = residual - part
            codes.append(code)
        fit = (x.detach() - z_q.detach()).pow(2).mean() / x.detach().pow(2).mean().clamp_min(1e-12)
        return FSQOutput(rearrange(z_q, "b n c -> b c n"), torch.stack(codes, dim=1), z.new_zeros(()), fit)


def strides(total: int) -> tuple[int, int]:
    """Split the downsampling factor over two convolutions (10 -> 5, 2)."""
    for s2 in (2, 3, 1):
        if total % s2 == 0 and total // s2 >= 1:
            return total // s2, s2
    return total, 1


class ReferenceConditioner(nn.Module):
    def __init__(self, config):
        super().__init__()
        c, d = config.reference_width, config.hidden_size
        self.frames, self.stride = config.reference_frames, config.reference_stride
        self.n_tokens = config.reference_tokens
        if self.frames // self.stride != self.n_tokens:
            raise ValueError(f"reference_tokens must be reference_frames / reference_stride "
                             f"({self.frames} / {self.stride}), got {self.n_tokens}")
        self.frame_rate = float(config.frame_rate)
        # the codec's code vectors, per codebook: a frozen copy (see load_codec_latents), part of the state dict
        self.register_buffer("codec_latents", torch.zeros(config.num_codebooks, config.codebook_size,
                                                          config.reference_latent_dim))
        self.inp = nn.Sequential(nn.Linear(config.reference_latent_dim, c), nn.LayerNorm(c))
        s1, s2 = strides(self.stride)
        self.down = nn.Sequential(nn.Conv1d(c, c, s1, stride=s1), nn.GELU(), nn.Conv1d(c, c, s2, stride=s2))
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(c, nhead=4, dim_feedforward=2 * c, dropout=0.0, batch_first=True),
            num_layers=1, enable_nested_tensor=False)
        kind = getattr(config, "reference_quantizer", "rvq")
        if kind == "fsq":
            self.quantizer = ResidualFSQ(c, config.reference_codebooks, config.reference_codebook_size, quantizer_dropout=0.5)
        elif kind == "rvq":
            self.quantizer = ResidualVectorQuantizer(latent_dim=c, num_codebooks=config.reference_codebooks,
                                                     codebook_size=config.reference_codebook_size,
                                                     codebook_dim=config.reference_codebook_dim, quantizer_dropout=0.5)
        else:
            raise ValueError(f"reference_quantizer must be rvq or fsq, got {kind!r}")
        self.out = nn.Linear(c, d)
        self.step = nn.Linear(c, d)
        self.null = nn.Parameter(torch.zeros(self.n_tokens, d))
        # zero-initialised outputs (ControlNet's trick): a fresh conditioner leaves the model as it was
        nn.init.zeros_(self.out.weight), nn.init.zeros_(self.out.bias)
        nn.init.zeros_(self.step.weight), nn.init.zeros_(self.step.bias)
        self.n_quantizers = config.reference_codebooks       # used at inference (the sweep lowers it)
        self.commitment_loss = torch.zeros(())               # the bottleneck's losses of the last pass (fine-tuning
        self.fit_loss = torch.zeros(())                      # weighs them: influence/train.py)

    # ------------------------------------------------------------------ setup and accounting
    @torch.no_grad()
    def load_codec_latents(self, codec) -> None:
        """Copy the codec's code vectors (each stage's decoded codes [V, D_lat]); they stay frozen."""
        stages = codec.quantizer.stages[:self.codec_latents.shape[0]]
        ids = torch.arange(self.codec_latents.shape[1], device=next(codec.parameters()).device)[None]
        table = torch.stack([rearrange(stage.decode(ids), "1 d v -> v d") for stage in stages])
        self.codec_latents.copy_(table.to(self.codec_latents))

    def bits_per_second(self, n_quantizers: int | None = None) -> float:
        n = self.n_quantizers if n_quantizers is None else n_quantizers
        return n * math.log2(self.quantizer.codebook_size) * self.frame_rate / self.stride

    @property
    def token_rate(self) -> float:
        return self.frame_rate / self.stride

    # ------------------------------------------------------------------ the bottleneck
    def latents(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, K, R] -> codec latent [B, R, D_lat] (sum of the K stages' code vectors)."""
        K = self.codec_latents.shape[0]
        if codes.dim() != 3 or codes.shape[1] < K or codes.shape[2] != self.frames:
            raise ValueError(f"reference codes must be [B, >={K}, {self.frames}], got {tuple(codes.shape)}")
        codes = codes[:, :K].clamp(0, self.codec_latents.shape[1] - 1)
        return sum(self.codec_latents[k][codes[:, k]] for k in range(K))

    def pre_quantizer(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, K, R] -> continuous encoder output [B, c, n] (what the RVQ quantizes)."""
        x = self.inp(self.latents(codes).to(self.out.weight.dtype))          # [B, R, c]
        x = self.down(rearrange(x, "b r c -> b c r"))                        # [B, c, n]
        x = self.encoder(rearrange(x, "b c n -> b n c"))                     # [B, n, c]
        return rearrange(x, "b n c -> b c n")

    def encode(self, codes: torch.Tensor, n_quantizers: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """codes [B, K, R] -> (quantized z_q [B, n, c], bottleneck codes [B, n_q, n]).

        Training (module in train mode, n_quantizers None): quantizer dropout and EMA k-means updates;
        the first call initialises the codebooks by k-means on the batch."""
        z = self.pre_quantizer(codes).float()
        if self.training and hasattr(self.quantizer, "initialize_from_data") and not bool(self.quantizer.initialized):
            self.quantizer.initialize_from_data(z.detach())
        n = None if (self.training and n_quantizers is None) else (n_quantizers or self.n_quantizers)
        q = self.quantizer(z, n_quantizers=n)
        self.commitment_loss = q.commitment_loss
        self.fit_loss = q.fit_loss if q.fit_loss is not None else torch.zeros_like(q.commitment_loss)
        return rearrange(q.z_q, "b c n -> b n c"), q.codes

    def forward(self, c) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Conditions -> (prefix [B, n, d], step bias [B, d]); null tokens / zero bias where dropped or absent."""
        B = c.batch_size
        dtype = self.out.weight.dtype
        null = self.null.to(dtype)[None].expand(B, -1, -1)
        if c.reference is None:
            self.commitment_loss = self.fit_loss = torch.zeros((), device=null.device)
            return null, torch.zeros(B, null.shape[-1], device=null.device, dtype=dtype)
        z_q, _ = self.encode(c.reference)
        z_q = z_q.to(dtype)
        tokens, bias = self.out(z_q), self.step(z_q.mean(dim=1))
        drop = c.dropped_rows("reference")
        if drop is not None:
            tokens = torch.where(drop[:, None, None], null, tokens)
            bias = bias.masked_fill(drop[:, None], 0.0)
        return tokens, bias
