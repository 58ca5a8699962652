"""`lyra lm train`: pretrain Lyra on token shards through DeepSpeed (ZeRO).

The same entrypoint runs 1 process, N CPU processes (gloo) or N GPUs (nccl):

    relaunch under torchrun (nproc > 1) -> init DeepSpeed -> same seed = same init on every rank
    step t: for each of grad_accum micro-batches: forward, backward (DeepSpeed sums and averages
            over ranks) -> clip -> AdamW at lr(t) (warm-up + cosine) -> checkpoint every N steps

Checkpoints live beside the output (`.<out>.checkpoints/`) until the run finishes: a killed run
rerun with the same command (same config, same tokens, same world size) resumes where it
stopped. At the end rank 0 writes the output folder atomically: a Hugging Face model
(config.json + model.safetensors), the loss curve, the training history, the final checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from components.common.atomic import atomic_write_json
from components.common.distributed import (all_reduce_mean, barrier, init_distributed, relaunch_under_torchrun,
                                           shutdown)
from components.common.reporting import stage_run
from components.common.seeds import derive_seed
from components.lyra.config import LMConfig
from components.lyra.data import (IGNORE, WindowSampler, evaluation_windows, make_batch, piece_ends,
                                  unigram_cross_entropy, unigram_log_probs)
from components.lyra.mfu import datasheet_peak_flops, measure_peak_flops
from components.lyra.model import LyraForMusicGeneration, build_model
from components.lyra.plots import plot_loss_curve
from components.tokens.dataset import TokenDataset
from components.common.errors import LyraError
from components.common.resume import ResumeFolder, checkpoint_folder, fingerprint
from components.common.schedules import warmup_cosine

STAGE = "lyra_pretrain"
SELECTION_SPLIT = "valid"      # picks the checkpoint; `test` is scored once, at the end, and picks nothing


class TrainingError(LyraError, RuntimeError):
    """Input a training run cannot start from (reported as a message, not a traceback)."""


# ---------------------------------------------------------------------------------- settings
def native_bf16(device: torch.device) -> bool:
    """Does `device` multiply bf16 matrices natively, i.e. faster than fp32?

    GPUs from Ampere on; CPUs with AVX512-BF16 or AMX (there oneDNN's bf16 matmuls run 2-3x its
    fp32 ones). Elsewhere bf16 is emulated and slower, so "auto" stays in fp32.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    return any(getattr(cpu, probe, lambda: False)() for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def use_bf16(cfg: LMConfig, device: torch.device) -> bool:
    if cfg.precision == "auto":
        return native_bf16(device)
    return cfg.precision == "bf16"


def bf16_autocast(bf16: bool, device: torch.device):
    """How bf16 is applied. GPU: DeepSpeed's bf16 mode (bf16 weights, fp32 master copy in the
    optimizer). CPU: autocast (fp32 weights; matmuls in bf16) because DeepSpeed's mode would also
    run layer norms and softmaxes through PyTorch's slower CPU bf16 kernels."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16 and device.type == "cpu")


def deepspeed_config(cfg: LMConfig, bf16: bool) -> dict:
    """The DeepSpeed config, built from the typed `lm` section (infra/deepspeed holds cluster variants)."""
    zero: dict = {"stage": cfg.zero_stage}
    if cfg.offload_optimizer and cfg.zero_stage >= 2:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    return {
        "train_micro_batch_size_per_gpu": cfg.micro_batch,
        "gradient_accumulation_steps": cfg.grad_accum,
        "gradient_clipping": cfg.grad_clip,
        "zero_optimization": zero,
        "bf16": {"enabled": bf16},
        "zero_allow_untested_optimizer": True,     # our torch AdamW (skips the 46 s fused-Adam JIT build)
        "steps_per_print": 1 << 30,               # we log ourselves
    }


def lr_at(step: int, cfg: LMConfig) -> float:
    """Linear warm-up to cfg.lr, then cosine decay to cfg.min_lr at cfg.steps (nanoGPT's get_lr)."""
    return warmup_cosine(step, cfg.lr, cfg.warmup_steps, cfg.steps, floor=cfg.min_lr)


def optimizer_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices of linear layers only (not embeddings, norms, biases, null text)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.dim() >= 2 and "embed" not in name and "null_text" not in name else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def run_fingerprint(cfg: LMConfig, tokens: Path, world: int) -> str:
    """What a checkpoint must match to be resumed: config, code, token data, world size."""
    return fingerprint(cfg, STAGE, (tokens / "meta.json", tokens / "index.parquet"), extra=(f"world={world}",))


RENDEZVOUS_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@contextlib.contextmanager
def process_group():
    """The DeepSpeed process group for this run, torn down afterwards.

    Under torchrun the rendezvous variables are set; a lone process (`nproc: 1`, or a test calling
    `train` directly) gets them for the duration of the run only, so nothing leaks into the
    caller's environment (a leaked WORLD_SIZE would make later commands skip their relaunch).
    The group itself stays up until the process ends or `main` shuts it down: DeepSpeed caches
    its groups, and a second run in the same process reuses them.
    """
    import deepspeed

    saved = None
    if "WORLD_SIZE" not in os.environ:
        saved = {k: os.environ.get(k) for k in RENDEZVOUS_ENV}
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        os.environ.update({"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                           "MASTER_PORT": str(port)})
    try:
        info = init_distributed(use_deepspeed=True)
        if not torch.distributed.is_initialized():
            deepspeed.init_distributed(dist_backend="gloo")
        yield info
    finally:
        for key, value in (saved or {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ------------------------------------------------------------------------------- checkpoints
class Checkpoints:
    """DeepSpeed checkpoints in the run's resume folder (components/common/resume.py), with an atomically
    written `latest.json` naming the tag to resume from."""

    def __init__(self, out: Path, fingerprint: str, keep: int, is_main: bool, log=None):
        self.root, self.fingerprint, self.keep = checkpoint_folder(out), fingerprint, keep
        if is_main:                                      # another run's checkpoints are set aside, never resumed
            ResumeFolder(self.root, fingerprint, log)
        barrier()

    def latest(self) -> dict | None:
        marker = self.root / "latest.json"
        if not marker.is_file():
            return None
        info = json.loads(marker.read_text())
        if info.get("fingerprint") != self.fingerprint or not (self.root / info["tag"]).is_dir():
            return None
        return info

    def save(self, engine, step: int, client_state: dict, is_main: bool, tag: str | None = None) -> str:
        """Save a resumable checkpoint (all ranks); `tag="best"` keeps the best-so-far model aside."""
        named = tag is not None
        tag = tag or f"step{step:07d}"
        engine.save_checkpoint(str(self.root), tag=tag, client_state=client_state, save_latest=False)
        barrier()                                        # every rank has written its shard
        if is_main and not named:
            atomic_write_json(self.root / "latest.json", {"tag": tag, "step": step, "fingerprint": self.fingerprint})
            tags = sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name.startswith("step"))
            for old in tags[:-self.keep]:
                shutil.rmtree(self.root / old, ignore_errors=True)
        barrier()
        return tag


# -------------------------------------------------------------------------------- evaluation
@dataclasses.dataclass
class HeldOut:
    """A held-out split scored the same way every time: fixed windows and their unigram baseline."""

    split: str
    dataset: TokenDataset
    windows: list
    ends: np.ndarray
    unigram: float          # cross-entropy of the same windows under the training split's code frequencies


def held_out_splits(tokens: Path, train: TokenDataset, W: int, max_windows: int, special: int, end: int) -> list[HeldOut]:
    """valid and test (those that have clips): valid selects the checkpoint, test reports."""
    log_probs = unigram_log_probs(train, end)
    out = []
    for split in ("valid", "test"):
        ds = TokenDataset(tokens, split=split)
        if not len(ds):
            continue
        windows, ends = evaluation_windows(ds, W, max_windows), piece_ends(ds)
        nll, count = 0.0, 0
        for i in range(0, len(windows), 64):
            s, n = unigram_cross_entropy(make_batch(ds, windows[i:i + 64], W, special, end, ends).labels, log_probs)
            nll, count = nll + s, count + n
        out.append(HeldOut(split, ds, windows, ends, nll / max(count, 1)))
    if not out:
        raise TrainingError(f"{tokens} has no clips in split 'valid' or 'test': validation needs held-out pieces")
    return out


@torch.no_grad()
def evaluate(engine, held: HeldOut, cfg: LMConfig, special: int, end: int, rank: int, world: int, device) -> float:
    """Mean cross-entropy per scored code over the held-out windows (shared out over ranks)."""
    engine.eval()
    mine = held.windows[rank::world]
    total = torch.zeros(2, dtype=torch.float64)
    for i in range(0, len(mine), cfg.micro_batch):
        batch = make_batch(held.dataset, mine[i:i + cfg.micro_batch], cfg.model.window_frames, special, end,
                           held.ends).to(device)
        logits = engine(**{**batch.model_inputs(), "labels": None}).logits.float()     # [B, K, S, V+1]
        total[0] += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.labels.reshape(-1),
                                    ignore_index=IGNORE, reduction="sum").item()
        total[1] += int((batch.labels != IGNORE).sum())
    if world > 1:
        torch.distributed.all_reduce(total)
    engine.train()
    return float(total[0] / max(total[1], 1))


# ------------------------------------------------------------------------------------ train
def train(cfg: LMConfig, tokens: str | os.PathLike, out: str | os.PathLike, metrics_path=None) -> dict:
    """Train and write `out`; every rank calls this. Returns the metrics (rank 0's are complete)."""
    tokens, out = Path(tokens), Path(out)
    if not (tokens / "meta.json").is_file():
        raise TrainingError(f"{tokens} is not a token-shard folder (no meta.json); run `lyra tokens build` first")
    with process_group() as info:
        return _train(cfg, tokens, out, metrics_path, info)


@dataclasses.dataclass
class Pretraining:
    """What the steps of one pretraining run share (every rank holds its own)."""

    cfg: LMConfig
    engine: Any
    optimizer: Any
    sampler: WindowSampler
    ckpts: Checkpoints
    held: list[HeldOut]
    select: HeldOut | None         # the split that chooses the checkpoint (valid); None: the last step is kept
    info: Any
    device: torch.device
    bf16: bool
    special: int
    end: int

    def evaluate(self, held: HeldOut) -> float:
        return evaluate(self.engine, held, self.cfg, self.special, self.end, self.info.rank, self.info.world_size,
                        self.device)

    def validate(self) -> float | None:
        return self.evaluate(self.select) if self.select is not None else None

    def optimizer_step(self, step: int) -> tuple[float, float]:
        """One optimizer step over this rank's slices of the global batch: (mean loss over ranks, lr)."""
        cfg, world = self.cfg, self.info.world_size
        lr = lr_at(step, cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss_sum = 0.0
        for micro in range(cfg.grad_accum):
            first = (micro * world + self.info.rank) * cfg.micro_batch    # this rank's slice of the global batch
            batch = self.sampler.batch(step, range(first, first + cfg.micro_batch)).to(self.device)
            # dropout masks, like the windows, depend only on (seed, step, slice): resumed and
            # N-process runs draw exactly what an uninterrupted 1-process run draws
            torch.manual_seed(derive_seed(cfg.seed, step, first))
            with bf16_autocast(self.bf16, self.device):
                loss = self.engine(**batch.model_inputs()).loss
            self.engine.backward(loss)
            self.engine.step()
            loss_sum += loss.item()
        return all_reduce_mean(loss_sum / cfg.grad_accum), lr

    def save(self, done: int, history: dict, tag: str | None = None) -> str:
        return self.ckpts.save(self.engine, done, {"step": done, "history": history}, self.info.is_main, tag=tag)


def _prepare(cfg: LMConfig, tokens: Path, out: Path, info, device: torch.device, bf16: bool, log):
    """The model, its DeepSpeed engine, the window sampler, the held-out splits and the checkpoint folder."""
    import deepspeed

    train_ds = TokenDataset(tokens, split="train")
    if len(train_ds) == 0:
        raise TrainingError(f"{tokens} has no training clips")
    torch.manual_seed(cfg.seed)                         # identical initial weights on every rank
    model = build_model(cfg.model, num_codebooks=train_ds.num_codebooks, codebook_size=train_ds.codebook_size,
                        frame_rate=train_ds.frame_rate, sample_rate=train_ds.sample_rate, text_dim=train_ds.text_dim)
    mcfg = model.config
    special, end, W = mcfg.special_id, mcfg.end_id, mcfg.window_frames
    log.info("Lyra: %.2f M parameters, K=%d x %d codes, %d-frame windows, %d process(es), ZeRO-%d, %s",
             sum(p.numel() for p in model.parameters()) / 1e6, mcfg.num_codebooks, mcfg.codebook_size, W,
             info.world_size, cfg.zero_stage, "bf16" if bf16 else "fp32")
    optimizer = torch.optim.AdamW(optimizer_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas,
                                  fused=device.type == "cuda")
    engine, optimizer, _, _ = deepspeed.initialize(model=model, optimizer=optimizer,
                                                   config=deepspeed_config(cfg, bf16 and device.type == "cuda"))
    sampler = WindowSampler(train_ds, W, special=special, end=end, seed=cfg.seed,
                            cond_dropout=cfg.cond_dropout, phrasing=cfg.phrasing)
    held = held_out_splits(tokens, train_ds, W, cfg.eval_windows, special, end)
    select = next((h for h in held if h.split == SELECTION_SPLIT), None)
    if select is None:
        log.warning("no %s clips: the last step's model is kept (test never selects)", SELECTION_SPLIT)
    for h in held:
        log.info("held-out %s: %d windows from %d clips; unigram baseline %.3f nats/code",
                 h.split, len(h.windows), len(h.dataset), h.unigram)
    ckpts = Checkpoints(out, run_fingerprint(cfg, tokens, info.world_size), cfg.keep_checkpoints, info.is_main, log)
    return model, Pretraining(cfg, engine, optimizer, sampler, ckpts, held, select, info, device, bf16, special, end)


@dataclasses.dataclass
class Speed:
    """Model FLOPs utilisation against this machine's measured matmul peak (or the configured one)."""

    flops_per_step: float
    peak: float                    # all ranks together
    measured: float
    datasheet: float | None
    compute_s: float = 0.0
    timed_steps: int = 0

    @classmethod
    def measure(cls, model, pre: Pretraining, positions: int, per_step: int) -> "Speed":
        world = pre.info.world_size
        # the matmul peak of this machine in the training precision, every rank measuring at once
        measured = all_reduce_mean(measure_peak_flops(pre.device, torch.bfloat16 if pre.bf16 else torch.float32))
        peak = (pre.cfg.peak_tflops * 1e12 if pre.cfg.peak_tflops is not None else measured) * world
        return cls(model.flops_per_position(positions) * positions * per_step, peak, measured,
                   datasheet_peak_flops(pre.device))

    def metrics(self, world: int, positions: int, per_step: int, configured: bool) -> dict:
        step_s = self.compute_s / max(self.timed_steps, 1)
        timed = self.timed_steps > 0
        return {"seconds_per_step": step_s, "tokens_per_second": positions * per_step / step_s if timed else None,
                "mfu": self.flops_per_step / (step_s * self.peak) if timed else None,
                "peak_flops_per_device": self.peak / world,
                "peak_source": "configured" if configured else "measured matmul calibration",
                "measured_peak_flops_per_device": self.measured, "datasheet_peak_flops_per_device": self.datasheet,
                "mfu_datasheet": self.flops_per_step / (step_s * self.datasheet * world)
                if timed and self.datasheet else None}


def _train_steps(pre: Pretraining, step: int, history: dict, speed: Speed, run) -> None:
    """Steps `step` .. cfg.steps: validation on the selection split, best-so-far and periodic checkpoints."""
    cfg, log, select = pre.cfg, run.log, pre.select
    pre.engine.train()
    for step in run.progress(range(step, cfg.steps), desc="lyra pretrain", total=cfg.steps - step, unit="step"):
        t0 = time.perf_counter()
        loss_mean, lr = pre.optimizer_step(step)
        dt = time.perf_counter() - t0
        if step > 0:                                                     # the first step pays for warm-up
            speed.compute_s, speed.timed_steps = speed.compute_s + dt, speed.timed_steps + 1
        grad_norm = pre.engine.get_global_grad_norm()
        history["train"].append((step, loss_mean))
        history["lr"].append((step, lr))
        history["grad_norm"].append((step, float(grad_norm) if grad_norm is not None else float("nan")))
        done = step + 1
        if done % cfg.log_every == 0 and pre.info.is_main:
            log.info("step %d/%d: loss %.3f, lr %.2e, %.0f ms/step, MFU %.1f%%", done, cfg.steps, loss_mean, lr,
                     dt * 1e3, 100 * speed.flops_per_step / (dt * speed.peak))
        if select is not None and cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
            val = pre.validate()
            history["valid"].append((done, val))
            log.info("step %d: %s loss %.3f (unigram %.3f)", done, select.split, val, select.unigram)
            if cfg.select_best and (history["best"] is None or val < history["best"]["loss"]):
                history["best"] = {"step": done, "loss": val}
                pre.save(done, history, tag="best")
        if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < cfg.steps:
            pre.save(done, history)


def _choose_model(pre: Pretraining, history: dict) -> tuple[str, str, int]:
    """Save the last step; load the best valid step when it generalised better. (final tag, chosen tag, step)"""
    cfg = pre.cfg
    val = pre.validate()
    if val is not None and (not history["valid"] or history["valid"][-1][0] != cfg.steps):
        history["valid"].append((cfg.steps, val))
    final_tag = pre.save(cfg.steps, history)
    best = history["best"]
    if cfg.select_best and best is not None and val is not None and best["loss"] < val:
        pre.engine.load_checkpoint(str(pre.ckpts.root), tag="best", load_optimizer_states=False,
                                   load_lr_scheduler_states=False)
        return final_tag, "best", best["step"]          # an earlier model generalised better
    return final_tag, final_tag, cfg.steps


def _train(cfg: LMConfig, tokens: Path, out: Path, metrics_path, info) -> dict:
    world = info.world_size
    device = torch.device("cuda", info.local_rank) if torch.cuda.is_available() else torch.device("cpu")
    bf16 = use_bf16(cfg, device)
    with stage_run(STAGE) as run:
        log = run.log
        model, pre = _prepare(cfg, tokens, out, info, device, bf16, log)
        history: dict = {"train": [], "valid": [], "lr": [], "grad_norm": [], "best": None}
        step, resumed_from = 0, None
        resume = pre.ckpts.latest()
        if resume is not None:
            _, client = pre.engine.load_checkpoint(str(pre.ckpts.root), tag=resume["tag"])
            step, history = int(client["step"]), client["history"]
            resumed_from = step
            log.info("resumed from %s (step %d of %d)", resume["tag"], step, cfg.steps)
        positions = model.config.prefix_len + model.config.window_steps      # sequence length per window
        per_step = cfg.micro_batch * cfg.grad_accum * world                    # windows per optimizer step
        speed = Speed.measure(model, pre, positions, per_step)
        started = time.time()
        _train_steps(pre, step, history, speed, run)
        final_tag, chosen_tag, chosen_step = _choose_model(pre, history)
        # every held-out split scored once, on the chosen model; only now is `test` looked at
        scores = {h.split: pre.evaluate(h) for h in pre.held}
        metrics = {
            "steps": cfg.steps, "selected_step": chosen_step, "world_size": world, "zero_stage": cfg.zero_stage,
            "precision": "bf16" if bf16 else "fp32", "parameters": sum(p.numel() for p in model.parameters()),
            "windows_per_step": per_step, "positions_per_window": positions,
            "train_loss": float(np.mean([l for _, l in history["train"][-max(1, cfg.log_every):]])),
            "selection_split": pre.select.split if pre.select is not None else None, "resumed_from_step": resumed_from,
            "train_seconds": time.time() - started, **speed.metrics(world, positions, per_step, cfg.peak_tflops is not None),
        }
        for h in pre.held:                                   # val_* (selection) and test_* (report)
            name = "val" if h.split == "valid" else h.split
            metrics.update({f"{name}_loss": scores[h.split], f"unigram_{name}_loss": h.unigram,
                            f"{name}_vs_unigram": scores[h.split] / h.unigram, f"{name}_windows": len(h.windows)})
        if info.is_main:
            log.info("model of step %d: %s", chosen_step, ", ".join(
                f"{h.split} loss {scores[h.split]:.3f} vs unigram {h.unigram:.3f}" for h in pre.held))
            log.info("%.0f s, %.0f positions/s, MFU %.2f%%", metrics["train_seconds"], metrics["tokens_per_second"] or 0,
                     100 * (metrics["mfu"] or 0))
            write_output(out, pre.engine, pre.ckpts, final_tag, chosen_tag, cfg, model.config, history, metrics,
                         (pre.select or pre.held[0]).unigram, tokens, run)
        barrier()
        run.finish(metrics, metrics_path)
    return metrics


def checkpoint_state_dict(ckpts: "Checkpoints", tag: str, zero_stage: int) -> dict:
    """fp32 weights of a saved checkpoint (ZeRO partitions reassembled)."""
    if zero_stage == 0:
        state = torch.load(ckpts.root / tag / "mp_rank_00_model_states.pt", map_location="cpu", weights_only=False)
        return {k: v.float() for k, v in state["module"].items()}
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    return get_fp32_state_dict_from_zero_checkpoint(str(ckpts.root), tag=tag)


def write_output(out: Path, engine, ckpts: "Checkpoints", final_tag: str, chosen_tag: str, cfg: LMConfig, mcfg,
                 history: dict, metrics: dict, unigram: float, tokens: Path, run) -> None:
    model = LyraForMusicGeneration(mcfg)
    missing, unexpected = model.load_state_dict(checkpoint_state_dict(ckpts, chosen_tag, cfg.zero_stage), strict=False)
    if unexpected or missing:
        raise TrainingError(f"checkpoint {chosen_tag} does not match the model: missing {missing}, unexpected {unexpected}")
    with run.output(out, inputs={"tokens": tokens}, params=cfg, lineage={"metrics": metrics}) as staged:
        staging = staged.dir
        model.save_pretrained(staging)
        atomic_write_json(staging / "training.json", {"history": history, "metrics": metrics,
                                                      "config": cfg.model_dump(mode="json")})
        plot_loss_curve(staged.image("loss_curve", "loss_curve.png"), history["train"], history["valid"], unigram,
                        selected=metrics["selected_step"])
        (staging / "checkpoints").mkdir()                    # the last state, to continue training from
        shutil.move(str(ckpts.root / final_tag), str(staging / "checkpoints" / final_tag))
        atomic_write_json(staging / "checkpoints" / "latest.json", {"tag": final_tag, "step": cfg.steps,
                                                                    "fingerprint": ckpts.fingerprint})
    shutil.rmtree(ckpts.root, ignore_errors=True)
    run.add_path("model", out)


def main(args) -> int:
    from components.config import config_from_args

    cfg = config_from_args("lm", LMConfig, args)
    if not (Path(args.tokens) / "meta.json").is_file():          # before spawning N processes to say so
        raise TrainingError(f"{args.tokens} is not a token-shard folder (no meta.json); run `lyra tokens build` first")
    code = relaunch_under_torchrun(cfg.nproc)
    if code is not None:
        return code
    try:
        train(cfg, args.tokens, args.out, args.metrics)
    finally:
        shutdown()
    return 0
