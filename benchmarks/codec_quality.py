"""Same data, same training loop, same budget: OmniCodec vs the EnCodec architecture, scored by ViSQOL.

Both codecs are trained from scratch by OmniCodec's trainer (`CodecTrainer` via `run_training`:
same crops, steps, optimiser, multi-scale mel + commitment (+ adversarial) losses) on the same
curated clips, then evaluated on the same held-out clips (split "test") with ViSQOL, mel distance
and SI-SDR.

The EnCodec side is transformers' `EncodecModel` encoder/decoder (SEANet + LSTM, 75 Hz) scaled to
the tiny budget (`--encodec-filters`, `--encodec-hidden`), with EnCodec's own quantizer re-created
here for training (transformers ships it inference-only): audiocraft's `EuclideanCodebook` /
`ResidualVectorQuantization`, i.e. Euclidean codebooks in the full latent space, k-means
initialisation on the first training batch, EMA updates (decay 0.99, laplace smoothing), expiry of
dead codes, commitment weight 1 (see `EMACodebook` for the two constants adapted to the tiny batch).
Not EnCodec's: its convs are kaiming-initialised (`_kaiming_init`), without which the encoder/decoder
learn nothing from their input at this budget. It uses 3 codebooks x 10 bits at 75 Hz = 2.25 kbps;
OmniCodec uses 4 x 10 bits at 50 Hz = 2.0 kbps (equal or lower bitrate).

    python benchmarks/codec_quality.py --curated data/curated [--steps 600] [--eval-clips 8]

Last line: `omnicodec_minus_encodec_visqol: X`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from einops import rearrange  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.utils import parametrize  # noqa: E402

from components.omnicodec.bitrate import bitrate_bps  # noqa: E402
from components.omnicodec.quantizer import QuantizerOutput  # noqa: E402


class EMACodebook(nn.Module):
    """EnCodec's codebook (audiocraft `EuclideanCodebook`): nearest code by Euclidean distance, codes
    learnt by EMA k-means (decay 0.99, laplace smoothing), k-means init (50 rounds) on the first
    training batch, expiry of dead codes onto random vectors of the current batch.

    Two adaptations, both needed for the codebook to work at this budget:
    - The dead-code threshold. EnCodec's absolute `threshold_ema_dead_code=2` assumes its batch:
      8 GPUs x 64 items x 1 s at 75 Hz = 38,400 vectors per step, 37.5 per code, so a code is dead
      below 2 / 37.5 = 5.3 % of the mean count. Here a step has ~240 vectors (mean count 0.23), so
      the threshold is that same share of the mean count: `2 * mean / 37.5` (an absolute 2 would
      expire every code at every step).
    - An expired code is really restarted: its EMA sums (`embed_avg`, `cluster_size`) are reset
      with it, as in vector-quantize-pytorch. audiocraft only overwrites `embed`, which the EMA
      renormalisation (`embed = embed_avg / cluster_size`) overwrites again in the same step, so its
      restart has no lasting effect. Likewise `embed_avg` starts as `centroids * counts` (audiocraft:
      the bare centroids, which shrinks every code by its count at the first update).

    Why the previous version collapsed to one code per codebook (perplexity 1, 1, 1): every count
    started at 1, so the mean count started at 1 instead of ~0.23 and an unused code (0.99^n) fell
    under 5 % of the mean only at step 439: no code was restarted for 73 % of the run. Meanwhile
    the first Adam step moved the untrained encoder's latent by 5.5 (norm 0.4 -> 5.6, spread across
    vectors 0.08), away from every code k-means had placed on the step-0 latents, so each codebook
    used one code from step 2 on. Counts from k-means restart the codes that got no vector from
    step 1. That alone left the information gap at 0.000: the encoder/decoder carried nothing even
    unquantized (see `_kaiming_init`).
    """

    def __init__(self, dim: int, size: int, decay: float = 0.99, eps: float = 1e-5, kmeans_iters: int = 50,
                 threshold_ema_dead_code: float = 2.0, reference_mean_count: float = 38_400 / 1024):
        super().__init__()
        self.size, self.decay, self.eps, self.kmeans_iters = size, decay, eps, kmeans_iters
        self.dead_share = threshold_ema_dead_code / reference_mean_count
        self.register_buffer("inited", torch.zeros(()))
        self.register_buffer("embed", torch.zeros(size, dim))
        self.register_buffer("embed_avg", torch.zeros(size, dim))
        self.register_buffer("cluster_size", torch.zeros(size))

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.embed.t() + self.embed.pow(2).sum(1)[None]
        return dist.argmin(dim=1)

    @torch.no_grad()
    def kmeans_init(self, flat: torch.Tensor) -> None:
        """audiocraft's `kmeans`: random samples as seeds (with replacement when there are fewer
        vectors than codes), Lloyd rounds; the cluster counts become the initial EMA counts, so codes
        that got no vector start dead and are restarted at once."""
        n = flat.shape[0]
        pick = torch.randperm(n, device=flat.device)[: self.size] if n >= self.size else \
            torch.randint(0, n, (self.size,), device=flat.device)
        centroids = flat[pick].clone()
        counts = torch.zeros(self.size, device=flat.device)
        for _ in range(self.kmeans_iters):
            assign = torch.cdist(flat, centroids).argmin(dim=1)
            counts = torch.bincount(assign, minlength=self.size).float()
            sums = torch.zeros_like(centroids).index_add_(0, assign, flat)
            centroids = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centroids)
        self.embed.copy_(centroids)
        self.embed_avg.copy_(centroids * counts[:, None])
        self.cluster_size.copy_(counts)
        self.inited.fill_(1.0)

    @torch.no_grad()
    def ema_update(self, flat: torch.Tensor, idx: torch.Tensor) -> int:
        """One EMA k-means step on this batch's assignments, then dead-code expiry. Returns the
        number of codes restarted."""
        onehot = F.one_hot(idx, self.size).type(flat.dtype)
        self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.embed_avg.mul_(self.decay).add_(onehot.t() @ flat, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.size * self.eps) * total
        self.embed.copy_(self.embed_avg / smoothed.unsqueeze(1))
        threshold = self.dead_share * self.cluster_size.mean()
        dead = self.cluster_size < threshold
        n_dead = int(dead.sum())
        if n_dead:  # restart them on random current vectors, counted as just alive
            sample = flat[torch.randint(0, flat.shape[0], (n_dead,), device=flat.device)]
            self.embed[dead] = sample
            self.embed_avg[dead] = sample * threshold
            self.cluster_size[dead] = threshold
        return n_dead


def _kaiming_init(model: nn.Module) -> None:
    """Kaiming-normal init of the weight-normed convs and transposed convs of EnCodec's encoder/decoder.

    `EncodecModel._init_weights` means to do this for every Conv1d, but under the `weight_norm`
    parametrization `module.weight` is recomputed from (g, v) on each access: the call writes to a
    temporary and the convs keep PyTorch's default init (std 0.41x kaiming's; the original EnCodec
    keeps the default too). Then every strided conv about halves the signal, so the untrained
    encoder's output is almost all bias (per-dimension std over time 0.0011 vs mean |.| 0.037 at 8
    filters), and in this 600-step budget the encoder/decoder learn no input dependence at all,
    quantized or not: with the quantizer bypassed, decoding clip i from clip i+1's latent costs 0.000
    mel distance. Conv1d alone is not enough (the decoder's transposed convs shrink the signal the
    same way: gap still 0.000), so both get kaiming; that gives a latent gap of ~0.01 in 600 steps.
    Assigning the weight goes through the parametrization's right_inverse: g = |w|, v = w.
    """
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)) and parametrize.is_parametrized(module, "weight"):
            weight = torch.empty_like(module.weight)
            nn.init.kaiming_normal_(weight)
            with torch.no_grad():
                module.weight = weight


class EncodecArchitecture(nn.Module):
    """transformers' EnCodec encoder/decoder + a trainable EMA RVQ, behind OmniCodec's interface.

    The RVQ is audiocraft's `ResidualVectorQuantization`: each stage quantizes the residual left by
    the previous ones; the commitment penalty is the mean over stages of mse(residual, code), where
    (straight-through per stage) only the first stage's term reaches the encoder, at EnCodec's
    weight 1: `commitment_scale` divides out the trainer's own commitment weight.
    """

    def __init__(self, *, num_filters: int, hidden_size: int, num_codebooks: int = 3, codebook_size: int = 1024,
                 commitment_scale: float = 1.0):
        super().__init__()
        from transformers import EncodecConfig, EncodecModel

        config = EncodecConfig(num_filters=num_filters, hidden_size=hidden_size, codebook_size=codebook_size)
        model = EncodecModel(config)
        _kaiming_init(model)
        self.encoder, self.decoder = model.encoder, model.decoder
        self.arch = {"num_filters": num_filters, "hidden_size": hidden_size, "num_codebooks": num_codebooks,
                     "codebook_size": codebook_size}
        self.sample_rate, self.hop_length = config.sampling_rate, math.prod(config.upsampling_ratios)
        self.frame_rate = self.sample_rate / self.hop_length
        self.num_codebooks, self.codebook_size = num_codebooks, codebook_size
        self.commitment_scale = commitment_scale
        self.codebooks = nn.ModuleList(EMACodebook(hidden_size, codebook_size) for _ in range(num_codebooks))

    def bitrate(self, n_quantizers: int | None = None) -> float:
        return bitrate_bps(self.sample_rate, self.hop_length, n_quantizers or self.num_codebooks, self.codebook_size)

    def _pad(self, wav: torch.Tensor) -> torch.Tensor:
        rem = wav.shape[-1] % self.hop_length
        return F.pad(wav, (0, self.hop_length - rem)) if rem else wav

    def _quantize(self, z: torch.Tensor, n: int, update: bool):
        residual = rearrange(z, "b d t -> (b t) d")
        quantized, codes, penalties = torch.zeros_like(residual), [], []
        for book in self.codebooks[:n]:
            if update and not book.inited:  # audiocraft: k-means on the first training batch
                book.kmeans_init(residual.detach())
            idx = book.nearest(residual.detach())
            q = book.embed[idx].clone()
            penalties.append(F.mse_loss(residual, q))
            if update:
                book.ema_update(residual.detach(), idx)
            quantized = quantized + q
            residual = (residual - q).detach()  # audiocraft's straight-through per stage: no gradient past stage 1
            codes.append(idx)
        z_q = rearrange(quantized, "(b t) d -> b d t", b=z.shape[0])
        codes = rearrange(torch.stack(codes, 1), "(b t) k -> b k t", b=z.shape[0])
        commitment = torch.stack(penalties).mean() * self.commitment_scale
        return z + (z_q - z).detach(), codes, commitment

    def forward(self, wav, n_quantizers=None, generator=None):
        length = wav.shape[-1]
        z = self.encoder(self._pad(wav))
        z_q, codes, commitment = self._quantize(z, self.num_codebooks, update=self.training)
        n = torch.full((wav.shape[0],), self.num_codebooks)
        return self.decoder(z_q)[..., :length], QuantizerOutput(z_q, codes, commitment, z.new_zeros(()), n)

    @torch.no_grad()
    def encode(self, wav, n_quantizers=None):
        return self._quantize(self.encoder(self._pad(wav)), n_quantizers or self.num_codebooks, update=False)[1]

    @torch.no_grad()
    def decode(self, codes):
        z_q = sum(self.codebooks[k].embed[codes[:, k]] for k in range(codes.shape[1]))
        return self.decoder(rearrange(z_q, "b t d -> b d t"))

    def save_pretrained(self, directory, extra_config=None):
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(directory / "model.safetensors"))
        (directory / "config.json").write_text(json.dumps({"model_type": "encodec-architecture", **self.arch,
                                                           **(extra_config or {})}, indent=2))


def train_and_score(name, codec, cfg, curated, clips_audio, n_quantizers, work, use_visqol):
    from components.common.reporting import StageRun
    from components.omnicodec.evaluate import evaluate_codec
    from components.omnicodec.train import run_training

    start = time.perf_counter()
    result = run_training(cfg, curated, work / name, StageRun(f"bench-{name}", None), codec=codec)
    seconds = time.perf_counter() - start
    codec.eval()
    scores = evaluate_codec(codec, clips_audio, n_quantizers, use_visqol=use_visqol)
    params = sum(p.numel() for p in codec.parameters())
    return {"name": name, "params": params, "train_seconds": round(seconds, 1),
            "valid_mel": result.metrics.get("valid_mel_distance"), "rows": scores["per_bitrate"],
            "codebook_perplexity": scores["codebook_perplexity"],
            "information_gap": scores["code_information_mel_gap"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--curated", type=Path, default=Path("data/curated"), help="curated folder (lyra curate)")
    parser.add_argument("--steps", type=int, default=600, help="training steps for each codec (the budget)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a `codec` config value for both runs, e.g. --set batch_size=8")
    parser.add_argument("--encodec-filters", type=int, default=8, help="EncodecConfig.num_filters (default 32)")
    parser.add_argument("--encodec-hidden", type=int, default=64, help="EncodecConfig.hidden_size (default 128)")
    parser.add_argument("--eval-clips", type=int, default=8, help="held-out clips scored")
    parser.add_argument("--eval-seconds", type=float, default=5.0, help="seconds of each held-out clip scored")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: OMP_NUM_THREADS)")
    parser.add_argument("--no-visqol", action="store_true", help="mel distance / SI-SDR only (fast smoke test)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from components.config import load_stage_config
    from components.omnicodec.config import CodecConfig
    from components.omnicodec.data import read_segment, split_clips
    from components.omnicodec.model import build_codec

    overrides = [f"steps={args.steps}", "valid_every=0", *args.overrides]
    cfg = load_stage_config("codec", CodecConfig, overrides=overrides)
    _, clips = split_clips(args.curated, ("test", "valid"))
    clips = clips[: args.eval_clips]
    audio = [read_segment(c, 0.0, args.eval_seconds, cfg.model.sample_rate) for c in clips]

    omni = build_codec(cfg.model, cfg.seed)
    torch.manual_seed(cfg.seed)
    encodec = EncodecArchitecture(num_filters=args.encodec_filters, hidden_size=args.encodec_hidden,
                                  commitment_scale=1.0 / cfg.commitment_weight)  # EnCodec's weight 1
    print(f"budget: {cfg.steps} steps x {cfg.batch_size} crops of {cfg.crop_seconds} s, adversarial "
          f"{'from step ' + str(cfg.adv_start_step) if cfg.adversarial else 'off'}; scored on {len(clips)} held-out "
          f"clips x {args.eval_seconds} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="codec-quality-") as tmp:
        results = [
            train_and_score("omnicodec", omni, cfg, args.curated, audio, list(range(1, omni.num_codebooks + 1)),
                            Path(tmp), not args.no_visqol),
            train_and_score("encodec_arch", encodec, cfg, args.curated, audio, [1, 2, 3], Path(tmp), not args.no_visqol),
        ]
    print(f"{'codec':13s} {'params':>8s} {'train s':>8s} {'kbps':>6s} {'ViSQOL':>7s} {'mel dist':>9s} {'SI-SDR':>7s}")
    for r in results:
        for row in r["rows"]:
            visqol = "n/a" if row["visqol"] is None else f"{row['visqol']:.3f}"
            print(f"{r['name']:13s} {r['params'] / 1e6:7.2f}M {r['train_seconds']:8.0f} {row['bitrate_kbps']:6.2f} "
                  f"{visqol:>7s} {row['mel_distance']:9.3f} {row['si_sdr']:7.1f}")
        print(f"{'':13s} codebook perplexity: {', '.join(f'{p:.0f}' for p in r['codebook_perplexity'])}; "
              f"mel distance from another clip's codes minus own: "
              f"{'n/a' if r['information_gap'] is None else format(r['information_gap'], '.3f')}")
    omni_row, enc_row = results[0]["rows"][-1], results[1]["rows"][-1]
    key = "mel_distance" if args.no_visqol else "visqol"
    print(f"OmniCodec at {omni_row['bitrate_kbps']:.2f} kbps vs EnCodec architecture at {enc_row['bitrate_kbps']:.2f} kbps")
    if args.no_visqol:
        print(f"encodec_minus_omnicodec_mel_distance: {enc_row['mel_distance'] - omni_row['mel_distance']:.3f}")
    else:
        print(f"omnicodec_minus_encodec_visqol: {omni_row[key] - enc_row[key]:.3f}")


if __name__ == "__main__":
    main()
