"""`lyra codec train`: GAN training of OmniCodec on curated clips, resumable, 1..N processes.

One step (DAC's recipe):
    recon, q = codec(crops)                                   # quantizer dropout picks n per item
    [adversarial on]  D step: LSGAN on (crops, recon.detach())
    G step: 15 * multi-scale mel + 0.25 * commitment   (the codes themselves learn by EMA k-means)
            [+ adversarial + 2 * feature matching, once step >= adv_start_step]
    every dead_code_interval steps: codes unused since the last check move onto current latents

Where things go:
    <work_dir>/ (default `.<out>.checkpoints/`)   resumable checkpoints; a killed run rerun with the same
                                             command continues from the newest one, bit for bit
    <out>/                                   replaced atomically at the end: model.safetensors,
                                             config.json, checkpoints/last.pt, loss_curve.png,
                                             spectrograms.png, examples/*.wav, lineage.json
The work folder is removed after a successful run.

Distributed: the generator is wrapped in DDP (its buffers, the codebook usage counts, are not
broadcast: they are summed over ranks at dead-code time); the discriminator's gradients are
averaged by hand, so the G step can use it with frozen parameters without confusing DDP.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from components.common.audio import write_wav
from components.common.distributed import DistInfo, barrier, init_distributed
from components.common.resume import checkpoint_folder
from components.common.seeds import torch_generator
from components.omnicodec import checkpoint as ckpt
from components.omnicodec import plots
from components.omnicodec.config import CodecConfig
from components.omnicodec.data import CropBatches, crop_loader, fixed_crops, split_clips
from components.omnicodec.discriminators import Discriminator
from components.omnicodec.losses import (MultiScaleMelLoss, discriminator_loss, feature_matching_loss,
                                         generator_adversarial_loss)
from components.omnicodec.model import OmniCodec, build_codec

INIT_STEP_BASE = 1 << 40  # batch ids used for the codebook initialisation


def step_generator(seed: int, step: int, rank: int, stream: int = 0) -> torch.Generator:
    """A CPU generator that depends only on (seed, step, rank, stream): randomness that resumes exactly."""
    return torch_generator(seed, step, rank, stream)


class CodecTrainer:
    """A codec (generator) + discriminator, their optimizers/schedulers, and one training step.

    `codec` is any module with forward(wav, generator=...) -> (recon, QuantizerOutput) and the
    optional codebook hooks initialize_codebooks / replace_dead_codes (OmniCodec has both; the
    EnCodec side of benchmarks/codec_quality.py has neither, its quantizer initialises and expires
    codes inside forward as audiocraft's does), so peers train under the same loop.
    """

    def __init__(self, cfg: CodecConfig, codec: nn.Module, *, device: torch.device, info: DistInfo,
                 sample_rate: int):
        self.cfg, self.device, self.info = cfg, device, info
        self.codec = codec.to(device)
        torch.manual_seed(cfg.seed + 1)  # the same discriminator init on every rank
        self.disc = Discriminator(channels=cfg.disc_channels, periods=cfg.mpd_periods,
                                  stft_windows=cfg.stft_windows).to(device)
        self.opt_g = torch.optim.AdamW(self.codec.parameters(), lr=cfg.lr, betas=cfg.betas)
        self.opt_d = torch.optim.AdamW(self.disc.parameters(), lr=cfg.lr, betas=cfg.betas)
        self.sched_g = torch.optim.lr_scheduler.ExponentialLR(self.opt_g, cfg.lr_gamma)
        self.sched_d = torch.optim.lr_scheduler.ExponentialLR(self.opt_d, cfg.lr_gamma)
        self.mel_loss = MultiScaleMelLoss(sample_rate, cfg.mel_windows, cfg.mel_bins, eps=cfg.mel_floor)
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.train_seconds = 0.0
        self.generator_module: nn.Module = self.codec

    # ---- set-up ---------------------------------------------------------------------------------
    def initialize_codebooks(self, dataset: CropBatches) -> None:
        """Data init of the codebooks from `init_batches` batches (step ids past any run: never trained on)."""
        if not hasattr(self.codec, "initialize_codebooks") or self.cfg.init_batches <= 0:
            return
        batches = [dataset[INIT_STEP_BASE + i].to(self.device) for i in range(self.cfg.init_batches)]
        self.codec.initialize_codebooks(batches, self.cfg.kmeans_iters,
                                        generator=step_generator(self.cfg.seed, -1, self.info.rank))

    def wrap_distributed(self) -> None:
        if self.info.is_distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.generator_module = DDP(self.codec, device_ids=ids, broadcast_buffers=False)
            for p in self.disc.parameters():  # start the discriminator identical everywhere
                dist.broadcast(p.data, src=0)

    def autocast(self):
        if self.device.type == "cuda" and self.cfg.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ---- one step ---------------------------------------------------------------------------------
    def train_step(self, wav: torch.Tensor) -> dict[str, float]:
        cfg = self.cfg
        self.codec.train()
        self.disc.train()
        wav = wav.to(self.device, non_blocking=True)
        with self.autocast():
            recon, q = self.generator_module(wav, generator=step_generator(cfg.seed, self.step, self.info.rank))
        recon = recon.float()
        logs: dict[str, float] = {}
        adversarial = cfg.adversarial and self.step >= cfg.adv_start_step

        if adversarial:  # D step on the detached reconstruction
            self.disc.requires_grad_(True)
            with self.autocast():
                outputs = self.disc(torch.cat([wav, recon.detach()]))
            real, fake = _split_outputs(outputs, wav.shape[0])
            loss_d = discriminator_loss(real, fake)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            _average_gradients(self.disc)
            nn.utils.clip_grad_norm_(self.disc.parameters(), 10.0)
            self.opt_d.step()
            self.sched_d.step()
            logs["disc"] = loss_d.item()

        mel = self.mel_loss(recon, wav)
        loss_g = cfg.mel_weight * mel + cfg.commitment_weight * q.commitment_loss
        if q.fit_loss is not None and cfg.fit_weight > 0:
            loss_g = loss_g + cfg.fit_weight * q.fit_loss
        if cfg.waveform_weight > 0:
            loss_g = loss_g + cfg.waveform_weight * (recon - wav).abs().mean()
        if adversarial:  # G step through a frozen discriminator
            self.disc.requires_grad_(False)
            with self.autocast():
                outputs = self.disc(torch.cat([wav, recon]))
            real, fake = _split_outputs(outputs, wav.shape[0])
            adv, fm = generator_adversarial_loss(fake), feature_matching_loss(real, fake)
            loss_g = loss_g + cfg.adv_weight * adv + cfg.feature_weight * fm
            logs.update(adv=adv.item(), fm=fm.item())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.codec.parameters(), cfg.grad_clip)
        self.opt_g.step()
        self.sched_g.step()
        self.step += 1
        logs.update(mel=mel.item(), commitment=q.commitment_loss.item(),
                    grad_norm=float(grad_norm))
        if q.fit_loss is not None:
            logs["fit"] = q.fit_loss.item()

        if cfg.dead_code_interval and self.step % cfg.dead_code_interval == 0 and hasattr(self.codec, "replace_dead_codes"):
            report = self.codec.replace_dead_codes(cfg.dead_code_threshold,
                                                   generator=step_generator(cfg.seed, self.step, 0, stream=1))
            for k, (n_dead, perplexity) in report.items():
                logs[f"replaced_{k}"] = float(n_dead)
                logs[f"perplexity_{k}"] = float(perplexity)
        return logs

    @torch.no_grad()
    def valid_mel(self, crops: torch.Tensor) -> float:
        """Multi-scale mel distance of the full-bitrate reconstruction of fixed validation crops.

        Runs in eval mode (no EMA code updates, no collectives) and restores the previous mode."""
        was_training = self.codec.training
        self.codec.eval()
        try:
            recon, _ = self.codec(crops.to(self.device))
            return float(self.mel_loss(recon.float(), crops.to(self.device)))
        finally:
            self.codec.train(was_training)

    # ---- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        rng = ckpt.rng_state()
        if self.info.is_distributed:
            gathered: list[Any] = [None] * self.info.world_size
            dist.all_gather_object(gathered, rng)
        else:
            gathered = [rng]
        return {
            "codec": self.codec.state_dict(), "disc": self.disc.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(), "sched_d": self.sched_d.state_dict(),
            "step": self.step, "history": self.history, "train_seconds": self.train_seconds,
            "rng": gathered, "world_size": self.info.world_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.codec.load_state_dict(state["codec"])
        self.disc.load_state_dict(state["disc"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.sched_d.load_state_dict(state["sched_d"])
        self.step, self.history = int(state["step"]), list(state["history"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        if state.get("world_size") == self.info.world_size:
            ckpt.set_rng_state(state["rng"][self.info.rank])


def _split_outputs(outputs, n_real: int):
    real = [(logits[:n_real], [f[:n_real] for f in feats]) for logits, feats in outputs]
    fake = [(logits[n_real:], [f[n_real:] for f in feats]) for logits, feats in outputs]
    return real, fake


def _average_gradients(module: nn.Module) -> None:
    if not (dist.is_available() and dist.is_initialized()):
        return
    world = dist.get_world_size()
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world


def training_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


@dataclasses.dataclass
class TrainResult:
    metrics: dict[str, Any]
    finished: bool
    resumed_from_step: int | None = None     # the checkpoint this run continued from (None: from scratch)


def default_work_dir(out: Path) -> Path:
    return checkpoint_folder(out)


def train_steps(trainer: CodecTrainer, dataset: CropBatches, valid_crops: torch.Tensor, cfg: CodecConfig,
                work_dir: Path, stop_after: int | None, info: DistInfo, progress) -> None:
    """Steps from the trainer's step to cfg.steps (or `stop_after`): the loss history, validation, checkpoints."""
    last_step = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    bar = progress(crop_loader(dataset, trainer.step, cfg.num_workers), desc="codec train",
                   total=cfg.steps, initial=trainer.step, unit="step")
    started, running = time.perf_counter(), {}
    for batch in bar:
        if trainer.step >= last_step:
            break
        logs = trainer.train_step(batch)
        for key in ("mel", "commitment", "adv", "fm", "disc"):
            if key in logs:
                running[key] = 0.9 * running.get(key, logs[key]) + 0.1 * logs[key]
        if info.is_main and hasattr(bar, "set_postfix"):
            bar.set_postfix({k: f"{v:.3g}" for k, v in running.items()}, refresh=False)
        if trainer.step % cfg.log_every == 0 or trainer.step == last_step:
            row = {"step": trainer.step, **logs}
            if cfg.valid_every and trainer.step % cfg.valid_every == 0 and info.is_main:
                row["valid_mel"] = trainer.valid_mel(valid_crops)
            trainer.history.append(row)
        if trainer.step % cfg.checkpoint_every == 0 or trainer.step == last_step:
            trainer.train_seconds += time.perf_counter() - started
            started = time.perf_counter()
            state = trainer.state_dict()  # collective under DDP: every rank takes part
            if info.is_main:
                ckpt.save_checkpoint(work_dir, trainer.step, state, cfg.keep_checkpoints)
            barrier()
    if hasattr(bar, "close"):
        bar.close()


def run_training(cfg: CodecConfig, curated: Path, out: Path, run, *, work_dir: Path | None = None,
                 stop_after: int | None = None, codec: nn.Module | None = None) -> TrainResult:
    """Train (or resume), then write the model folder atomically. `stop_after` ends the run right after
    that step's checkpoint, as if killed there (for tests and for splitting a run)."""
    info = init_distributed()
    device = training_device()
    work_dir = Path(work_dir) if work_dir else default_work_dir(out)
    log = run.log

    _, train_clips = split_clips(curated, ("train",))
    valid_split, valid_clips = split_clips(curated, ("valid", "test", "train"))
    sr = cfg.model.sample_rate
    dataset = CropBatches(train_clips, batch_size=cfg.batch_size, crop_samples=cfg.crop_samples, sample_rate=sr,
                          seed=cfg.seed, rank=info.rank, steps=cfg.steps)
    valid_crops = fixed_crops(valid_clips, cfg.valid_clips, 2.0, sr)

    codec = codec if codec is not None else build_codec(cfg.model, cfg.seed)
    trainer = CodecTrainer(cfg, codec, device=device, info=info, sample_rate=sr)
    digest = ckpt.config_digest(cfg)
    resume_from = ckpt.prepare_work_dir(work_dir, digest, log) if info.is_main else None
    if info.is_distributed:
        holder = [resume_from]
        dist.broadcast_object_list(holder, src=0)
        resume_from = holder[0]
    resumed_from_step = None
    if resume_from is not None:
        trainer.load_state_dict(ckpt.load_checkpoint(resume_from, map_location=device))
        resumed_from_step = trainer.step
        log.info("resumed from %s (step %d)", resume_from, trainer.step)
    else:
        trainer.initialize_codebooks(dataset)
        trainer.history.append({"step": 0, "valid_mel": trainer.valid_mel(valid_crops)})
    trainer.wrap_distributed()

    n_params = sum(p.numel() for p in codec.parameters())
    log.info("%s %.2fM params, %.2f kbps (%d x %d codes at %.1f Hz); %d train clips, world size %d, %s",
             type(codec).__name__, n_params / 1e6, codec.bitrate() / 1000, codec.num_codebooks, codec.codebook_size,
             codec.frame_rate, len(train_clips), info.world_size, device)

    train_steps(trainer, dataset, valid_crops, cfg, work_dir, stop_after, info, run.progress)
    if trainer.step < cfg.steps:
        log.info("stopped after step %d of %d; rerun the same command to resume from %s", trainer.step, cfg.steps,
                 work_dir)
        return TrainResult({"step": trainer.step}, finished=False, resumed_from_step=resumed_from_step)

    metrics: dict[str, Any] = {}
    if info.is_main:
        metrics = _write_model_folder(cfg, trainer, codec, curated, out, work_dir, valid_crops, valid_clips,
                                      valid_split, run, n_params)
        shutil.rmtree(work_dir, ignore_errors=True)
    barrier()
    return TrainResult(metrics, finished=True, resumed_from_step=resumed_from_step)


def _write_model_folder(cfg, trainer: CodecTrainer, codec: OmniCodec, curated, out: Path, work_dir: Path,
                        valid_crops, valid_clips, valid_split, run, n_params) -> dict[str, Any]:
    codec.eval()
    final_valid = trainer.valid_mel(valid_crops)
    initial_valid = next((h["valid_mel"] for h in trainer.history if h["step"] == 0 and "valid_mel" in h), None)
    losses = {k: v for k, v in trainer.history[-1].items() if k in ("mel", "commitment", "adv", "fm", "disc")}
    perplexities = [trainer.history[i] for i in range(len(trainer.history))]
    last_perplexity = {}
    for row in perplexities:
        last_perplexity.update({k: v for k, v in row.items() if k.startswith("perplexity_")})
    metrics = {
        "steps": trainer.step, "train_seconds": round(trainer.train_seconds, 1), "params": n_params,
        "bitrate_kbps": codec.bitrate() / 1000, "frame_rate": codec.frame_rate,
        "num_codebooks": codec.num_codebooks, "codebook_size": codec.codebook_size,
        "valid_mel_distance": final_valid, "valid_mel_distance_initial": initial_valid,
        "valid_split": valid_split, **{f"final_{k}": v for k, v in losses.items()},
        "codebook_perplexity": [last_perplexity[f"perplexity_{k}"] for k in range(codec.num_codebooks)
                                if f"perplexity_{k}" in last_perplexity],
        "codebook_replaced": sum(v for h in trainer.history for k, v in h.items() if k.startswith("replaced_")),
    }
    with run.output(out, inputs={"curated": curated}, params=cfg, lineage={"metrics": metrics}) as staged:
        staging = staged.dir
        codec.save_pretrained(staging, extra_config={"init_seed": cfg.seed, "trained_steps": trainer.step})
        (staging / "checkpoints").mkdir()
        last = ckpt.list_checkpoints(work_dir)[-1][1]
        shutil.copy2(last, staging / "checkpoints" / "last.pt")
        plots.loss_curve(trainer.history, staged.image("loss_curve", "loss_curve.png"),
                         cfg.adv_start_step if cfg.adversarial and cfg.adv_start_step < cfg.steps else None)
        n = min(cfg.n_examples, len(valid_crops))
        codec.eval()
        with torch.no_grad():
            recon, _ = codec(valid_crops[:n].to(trainer.device))
        recon = recon.float().cpu()
        titles = [c.clip_id for c in valid_clips[:n]]
        plots.spectrogram_pairs(valid_crops[:n], recon, cfg.model.sample_rate, staged.image("spectrograms", "spectrograms.png"),
                                titles)
        for i in range(n):
            write_wav(staging / "examples" / f"{i}_input.wav", valid_crops[i, 0].numpy(), cfg.model.sample_rate)
            write_wav(staging / "examples" / f"{i}_reconstruction.wav", np.clip(recon[i, 0].numpy(), -1, 1),
                      cfg.model.sample_rate)
    run.add_path("examples", out / "examples")
    run.add_path("model_dir", out)
    run.log.info("trained %d steps in %.0f s; validation mel distance %.3f -> %.3f", trainer.step,
                 trainer.train_seconds, initial_valid or math.nan, final_valid)
    return metrics
