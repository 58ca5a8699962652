"""Residual vector quantizer with DAC's improvements (Kumar et al. 2023, "High-Fidelity Audio
Compression with Improved RVQGAN", section 3.2), and codes learnt as k-means centroids:

* factorised codes: each stage projects the D-dim residual to a tiny `codebook_dim` (8) space
  and looks the code up there, so the 1024 entries are cheap to search and all get used;
* l2-normalised lookup: nearest code by cosine similarity, as in DAC. Directions are taken
  relative to a running mean of the stage's projected latents (`centre`, an EMA like BatchNorm's
  running mean, used in training and at inference alike) and the codes are stored relative to it:
  the projected latents share a common offset far larger than their frame-to-frame spread
  (measured: every frame within 10 degrees of the mean direction), and an uncentred cosine then
  sees one direction and uses a handful of codes;
* codes learnt as k-means centroids (EMA, as in SoundStream/EnCodec) rather than by gradient
  (gradient-trained codes collapsed here: perplexity 350 -> 1 within 10 steps), a data
  initialisation (a few rounds of k-means on real latents) and dead-code replacement (codes unused
  for a whole window are moved onto current latents of their stage, preferring the latents the
  codebook covers worst, k-means++ style);
* a residual fit: each stage's decoded code is trained to match the residual it quantizes, in the
  D-dim latent space (`fit_loss`, relative squared error). Without it nothing asks out_proj(in_proj(r))
  to resemble r, and the "residual" handed to the next stage grew instead of shrinking (|r| x1.4
  after stage 1, measured), so later stages quantized noise;
* quantizer dropout: during training each item keeps only its first n ~ U{1..K} stages with
  probability `quantizer_dropout`, so one model serves every bitrate from 1 to K codebooks.

Shapes: latent z [B, D, T]; codes [B, K, T] (int64); per-stage projected latents [B, d, T].
"""

from __future__ import annotations

import dataclasses

import torch
import torch.distributed as dist
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from components.omnicodec.layers import wn_conv1d


def _dist_ready() -> bool:
    return dist.is_available() and dist.is_initialized()


@dataclasses.dataclass
class QuantizerOutput:
    z_q: torch.Tensor              # [B, D, T] quantized latent (straight-through gradients to z)
    codes: torch.Tensor            # [B, K, T]
    commitment_loss: torch.Tensor  # scalar: pulls the encoder towards its codes
    codebook_loss: torch.Tensor    # scalar, 0 here: the codes learn by EMA k-means (kept for gradient-trained peers)
    n_quantizers: torch.Tensor     # [B] stages each item used (quantizer dropout)
    fit_loss: torch.Tensor | None = None  # scalar: relative error of each stage's output vs its residual


class FactorizedVectorQuantizer(nn.Module):
    """One RVQ stage: D -> d projection, centred cosine nearest-neighbour lookup, d -> D projection.

        z_e = in_proj(residual)                        [B, d, T]
        k   = argmax_j cos(z_e - centre, codebook_j)   the l2-normalised lookup, relative to the centre
        out = out_proj(centre + codebook_k)            straight-through to z_e in training

    The codebook is a k-means state, not a parameter: each training step moves every used code to
    the running (EMA) mean of the (centred) latents assigned to it.
    """

    def __init__(self, latent_dim: int, codebook_size: int, codebook_dim: int, decay: float = 0.99,
                 eps: float = 1e-5, lookup_metric: str = "cosine", centring: bool = True):
        super().__init__()
        if lookup_metric not in ("cosine", "euclidean"):
            raise ValueError(f"lookup_metric must be cosine or euclidean, got {lookup_metric!r}")
        self.lookup_metric, self.centring = lookup_metric, centring
        self.codebook_size, self.decay, self.eps = codebook_size, decay, eps
        self.in_proj = wn_conv1d(latent_dim, codebook_dim, 1)
        self.out_proj = wn_conv1d(codebook_dim, latent_dim, 1)
        self.register_buffer("codebook", torch.randn(codebook_size, codebook_dim))  # relative to `centre`
        self.register_buffer("centre", torch.zeros(codebook_dim))                   # EMA of the projected latents
        self.register_buffer("cluster_size", torch.ones(codebook_size))   # EMA of assignment counts
        self.register_buffer("code_sum", self.codebook.clone())            # EMA of assigned latent sums
        # assignments since the last dead-code check (summed over ranks at check time)
        self.register_buffer("usage", torch.zeros(codebook_size))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # codecs saved before the centre existed looked codes up uncentred: a zero centre is exactly that
        state_dict.setdefault(prefix + "centre", torch.zeros_like(self.centre))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def centred(self, z_e: torch.Tensor) -> torch.Tensor:
        """Projected latents [B, d, T] relative to the running centre (unchanged without centring)."""
        return z_e - self.centre[None, :, None].to(z_e.dtype) if self.centring else z_e

    def _scores(self, flat: torch.Tensor) -> torch.Tensor:
        """Centred latents [N, d] -> [N, codebook_size] similarities (higher = nearer)."""
        book = self.codebook.float()
        if self.lookup_metric == "cosine":
            return F.normalize(flat, dim=-1) @ F.normalize(book, dim=-1).t()
        return 2 * flat @ book.t() - book.pow(2).sum(-1)[None]  # -|x - c|^2 up to a per-row constant

    def nearest_codes(self, z_e: torch.Tensor) -> torch.Tensor:
        """Projected latents [B, d, T] -> code indices [B, T] (max centred cosine, or min distance)."""
        flat = rearrange(self.centred(z_e), "b d t -> (b t) d").float()
        return rearrange(self._scores(flat).argmax(dim=-1), "(b t) -> b t", b=z_e.shape[0])

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, T] -> code vectors [B, d, T] in the projected space (centre added back)."""
        vectors = rearrange(F.embedding(codes, self.codebook), "b t d -> b d t")
        return vectors + self.centre[None, :, None] if self.centring else vectors

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, T] -> this stage's contribution to the latent [B, D, T]."""
        return self.out_proj(self.lookup(codes).to(self.out_proj.bias.dtype))

    @torch.no_grad()
    def set_codes(self, mask: torch.Tensor, vectors: torch.Tensor) -> None:
        """Put the codes selected by `mask` at (centred) `vectors` (initialisation, dead-code replacement)."""
        self.codebook[mask] = vectors.to(self.codebook.dtype)
        self.code_sum[mask] = vectors.to(self.code_sum.dtype)
        self.cluster_size[mask] = 1.0

    @torch.no_grad()
    def update_centre(self, z_e: torch.Tensor, keep: torch.Tensor) -> None:
        """EMA step of the centre towards the mean projected latent of the items using this stage."""
        if not self.centring:
            return
        weight = keep.float().to(z_e.device)[:, None, None]
        stats = torch.cat([(z_e.float() * weight).sum(dim=(0, 2)), (weight.sum() * z_e.shape[-1]).reshape(1)])
        if _dist_ready():
            dist.all_reduce(stats)
        if stats[-1] > 0:
            self.centre.lerp_(stats[:-1] / stats[-1], 1 - self.decay)

    @torch.no_grad()
    def ema_update(self, z_c: torch.Tensor, codes: torch.Tensor, keep: torch.Tensor) -> None:
        """k-means step by EMA over the items that use this stage (counts and sums summed over ranks).

        z_c are centred projected latents [B, d, T]."""
        flat = rearrange(z_c.float(), "b d t -> (b t) d")
        weight = keep.float().to(flat.device).repeat_interleave(z_c.shape[-1])  # [(b t)] 0 for dropped items
        onehot = F.one_hot(codes.flatten(), self.codebook_size).float() * weight[:, None]
        counts, sums = onehot.sum(0), onehot.t() @ flat
        if _dist_ready():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        if counts.sum() == 0:  # no item (on any rank) reached this stage: no k-means step, no decay
            return
        self.usage += counts
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.code_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.codebook_size * self.eps) * total
        self.codebook.copy_(self.code_sum / smoothed[:, None])

    def forward(self, residual: torch.Tensor, keep: torch.Tensor | None = None):
        """residual [B, D, T] -> (z_q [B, D, T], codes [B, T], commit [B], fit [B], centred z_e [B, d, T]).

        `fit` is |residual - z_q|^2 / |residual|^2 per item, with gradients to the projections only."""
        keep = torch.ones(residual.shape[0]) if keep is None else keep
        z_e = self.in_proj(residual)
        if self.training:
            self.update_centre(z_e.detach(), keep)
        codes = self.nearest_codes(z_e.detach())
        z_c = self.centred(z_e.detach())
        if self.training:
            self.ema_update(z_c, codes, keep)
        code_vectors = self.lookup(codes).to(z_e.dtype)
        commitment = F.mse_loss(z_e, code_vectors, reduction="none").mean(dim=(1, 2))
        z_q = self.out_proj(z_e + (code_vectors - z_e).detach())  # straight-through estimator
        # the same output with the residual detached: trains in_proj/out_proj to fit the residual
        # without pulling the encoder (whose latent should serve the decoder, not the quantizer)
        target = residual.detach()
        z_fit = self.in_proj(target)
        fit_q = self.out_proj(z_fit + (code_vectors - z_fit).detach())
        fit = (target - fit_q).pow(2).mean(dim=(1, 2)) / target.pow(2).mean(dim=(1, 2)).clamp_min(1e-12)
        return z_q, codes, commitment, fit, z_c


class ResidualVectorQuantizer(nn.Module):
    def __init__(self, *, latent_dim: int, num_codebooks: int, codebook_size: int, codebook_dim: int,
                 quantizer_dropout: float, decay: float = 0.99, lookup_metric: str = "cosine",
                 centring: bool = True):
        super().__init__()
        self.num_codebooks = num_codebooks
        self.codebook_size = codebook_size
        self.quantizer_dropout = quantizer_dropout
        self.lookup_metric = lookup_metric
        self.stages = nn.ModuleList(
            FactorizedVectorQuantizer(latent_dim, codebook_size, codebook_dim, decay, lookup_metric=lookup_metric,
                                      centring=centring)
            for _ in range(num_codebooks)
        )
        self.register_buffer("initialized", torch.tensor(False))
        self._last_projected: list[torch.Tensor] = []  # per-stage centred z_e of the last training batch

    def _check_n(self, n_quantizers: int | None) -> int:
        n = self.num_codebooks if n_quantizers is None else int(n_quantizers)
        if not 1 <= n <= self.num_codebooks:
            raise ValueError(f"n_quantizers must be in 1..{self.num_codebooks}, got {n_quantizers}")
        return n

    def sample_n_quantizers(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """[B] stages per item: all K, or with probability `quantizer_dropout` n ~ U{1..K}."""
        n = torch.full((batch,), self.num_codebooks, dtype=torch.long)
        if self.training and self.quantizer_dropout > 0:
            drop = torch.rand(batch, generator=generator) < self.quantizer_dropout
            n_random = torch.randint(1, self.num_codebooks + 1, (batch,), generator=generator)
            n = torch.where(drop, n_random, n)
        return n

    def forward(self, z: torch.Tensor, n_quantizers: int | torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> QuantizerOutput:
        """z [B, D, T] -> QuantizerOutput. In training mode, n_quantizers=None means quantizer dropout."""
        batch = z.shape[0]
        if n_quantizers is None:
            n_per_item = self.sample_n_quantizers(batch, generator)
        elif isinstance(n_quantizers, torch.Tensor):
            n_per_item = n_quantizers.long().cpu()
        else:
            n_per_item = torch.full((batch,), self._check_n(n_quantizers), dtype=torch.long)
        n_per_item = n_per_item.to(z.device)
        # training runs every stage (masked per item) so each parameter gets a gradient every step,
        # which DDP requires; inference stops at the deepest stage asked for
        n_max = self.num_codebooks if self.training else int(n_per_item.max())

        residual, z_q = z, torch.zeros_like(z)
        codes, commitment, fit = [], z.new_zeros(()), z.new_zeros(())
        self._last_projected = []
        for k, stage in enumerate(self.stages[:n_max]):
            keep = (n_per_item > k).to(z.dtype)  # [B] 1 where this item uses stage k
            stage_q, stage_codes, commit_k, fit_k, z_c = stage(residual, keep.cpu())
            z_q = z_q + stage_q * keep[:, None, None]
            residual = residual - stage_q
            codes.append(stage_codes)
            denom = keep.sum().clamp_min(1.0)
            commitment = commitment + (commit_k * keep).sum() / denom
            fit = fit + (fit_k * keep).sum() / denom
            if self.training:
                self._last_projected.append(z_c)
        return QuantizerOutput(z_q, torch.stack(codes, dim=1), commitment, z.new_zeros(()), n_per_item, fit)

    @torch.no_grad()
    def encode(self, z: torch.Tensor, n_quantizers: int | None = None) -> torch.Tensor:
        """z [B, D, T] -> codes [B, n, T] with n = n_quantizers (default K)."""
        n = self._check_n(n_quantizers)
        residual, codes = z, []
        for stage in self.stages[:n]:
            stage_codes = stage.nearest_codes(stage.in_proj(residual))
            residual = residual - stage.decode(stage_codes)
            codes.append(stage_codes)
        return torch.stack(codes, dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, K', T] (K' <= K: the first K' stages) -> latent [B, D, T]."""
        if codes.dim() != 3 or not 1 <= codes.shape[1] <= self.num_codebooks:
            raise ValueError(f"codes must be [B, K', T] with 1 <= K' <= {self.num_codebooks}, got {tuple(codes.shape)}")
        if codes.min() < 0 or codes.max() >= self.codebook_size:
            raise ValueError(f"codes must lie in [0, {self.codebook_size})")
        return sum(stage.decode(codes[:, k]) for k, stage in enumerate(self.stages[: codes.shape[1]]))

    # ---- codebook maintenance (training only) -------------------------------------------------

    @torch.no_grad()
    def initialize_from_data(self, z: torch.Tensor, kmeans_iters: int = 5,
                             generator: torch.Generator | None = None) -> None:
        """Data init, stage by stage: centre = mean projected residual, codes = k-means centroids around it.

        z [B, D, T] are encoder latents of real clips. Under DDP call it on every rank before
        wrapping the model: DDP then broadcasts rank 0's codebooks to all ranks.
        """
        residual = z
        for stage in self.stages:
            projected = stage.in_proj(residual)
            if stage.centring:
                stage.centre.copy_(projected.float().mean(dim=(0, 2)))
            flat = rearrange(stage.centred(projected), "b d t -> (b t) d")
            everything = torch.ones(self.codebook_size, dtype=torch.bool, device=flat.device)
            stage.set_codes(everything, _kmeans(flat, self.codebook_size, kmeans_iters, generator, self.lookup_metric))
            residual = residual - stage.decode(stage.nearest_codes(projected))
        self.initialized.fill_(True)

    @torch.no_grad()
    def replace_dead_codes(self, threshold: float = 1.0, generator: torch.Generator | None = None) -> dict:
        """Move codes used fewer than `threshold` times since the last call onto latents of the last batch.

        The new codes are distinct latents of that stage, drawn with probability proportional to
        how badly the current codebook covers them (k-means++ seeding); at most one per latent.
        Usage counts are summed over ranks; rank 0 draws the replacements and broadcasts the
        codebooks, so every rank ends with the same weights. Returns {stage: (n_replaced, perplexity)}.
        """
        report = {}
        for k, stage in enumerate(self.stages):
            usage = stage.usage.clone()
            if _dist_ready():
                dist.all_reduce(usage)
            perplexity = _perplexity(usage)
            dead = usage < threshold
            n_replaced = 0
            if bool(dead.any()) and k < len(self._last_projected) and usage.sum() > 0:
                candidates = rearrange(self._last_projected[k], "b d t -> (b t) d").float()
                n_replaced = min(int(dead.sum()), candidates.shape[0])
                # how far each latent is from its nearest live code: uncovered latents first
                live = ~dead
                scores = stage._scores(candidates)[:, live].max(dim=-1).values
                gap = (1 - scores) if self.lookup_metric == "cosine" else \
                    (candidates.pow(2).sum(-1) - scores)  # |x - c|^2 of the nearest live code
                weights = gap.clamp_min(0).cpu() + 1e-12
                pick = torch.multinomial(weights, n_replaced, replacement=False, generator=generator)
                slots = torch.nonzero(dead).flatten()
                slots = slots[torch.randperm(len(slots), generator=generator)[:n_replaced].to(slots.device)]
                mask = torch.zeros_like(dead)
                mask[slots] = True
                stage.set_codes(mask, candidates[pick.to(candidates.device)])
                if _dist_ready():
                    for buffer in (stage.codebook, stage.code_sum, stage.cluster_size):
                        dist.broadcast(buffer, src=0)
            stage.usage.zero_()
            report[k] = (n_replaced, perplexity)
        return report


def _perplexity(counts: torch.Tensor) -> float:
    """exp(entropy) of a code histogram: 1 = one code used, codebook_size = all used equally."""
    total = counts.sum()
    if total <= 0:
        return 0.0
    p = counts.double() / total
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return float(entropy.exp())


def code_perplexity(codes: torch.Tensor, codebook_size: int) -> list[float]:
    """codes [B, K, T] -> perplexity of each codebook's usage."""
    return [_perplexity(torch.bincount(codes[:, k].flatten(), minlength=codebook_size).float())
            for k in range(codes.shape[1])]


def _kmeans(x: torch.Tensor, k: int, iters: int, generator: torch.Generator | None,
            metric: str = "cosine") -> torch.Tensor:
    """x [N, d] -> k centroids [k, d]: assignment by cosine (spherical k-means) or distance,
    centroid = mean of its members.

    With fewer points than codes, the points are reused (with a little noise), which is the
    "initialise from data" fallback; empty clusters keep their previous centroid.
    """
    x = x.float()
    n = x.shape[0]
    pick = torch.randperm(n, generator=generator)[:k] if n >= k else torch.randint(0, n, (k,), generator=generator)
    centroids = x[pick.to(x.device)].clone()
    if n < k:
        centroids += 1e-3 * x.std() * torch.randn(centroids.shape, generator=generator).to(x.device)
    for _ in range(iters if n >= k else 0):
        if metric == "cosine":
            assign = (F.normalize(x, dim=-1) @ F.normalize(centroids, dim=-1).t()).argmax(dim=-1)
        else:
            assign = torch.cdist(x, centroids).argmin(dim=-1)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).unsqueeze(1).to(x.dtype)
        centroids = torch.where(counts > 0, sums / counts.clamp_min(1), centroids)
    return centroids
