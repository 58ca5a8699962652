"""Fine-tuning Lyra with a reference conditioner: PEFT LoRA on the attention + the conditioner.

    post-trained Lyra (frozen) + LoRA(qkv, proj) + ReferenceConditioner (new, trained)
    loss = CE(target window | text?, reference?, timing)
           + aux_weight * (commitment_weight * bottleneck commitment + residual fit)
           every dead_code_interval steps: bottleneck codes unused since the last check move onto latents
           text and reference dropped independently (text_dropout, reference_dropout): one network is
           the full, the reference-only and the unconditional model that double guidance mixes

Only LoRA matrices and the conditioner train (PEFT freezes the base; tests/influence checks which
tensors changed). Checkpoints (trainable tensors, the conditioner's k-means state, optimizer, step,
history) go to `.<out>.checkpoints/` beside the output with the run's fingerprint: a killed run
rerun with the same command resumes from its last checkpoint; another config or input starts afresh.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from components.influence.config import InfluenceConfig
from components.influence.pairs import Recording, pair_batch
from components.lyra.model import LyraForMusicGeneration
from components.lyra.reference import ReferenceConditioner
from components.common.errors import LyraError
from components.common.resume import ResumeFolder, fingerprint
from components.common.schedules import warmup_cosine

CONDITIONER = "condition.reference."


class InfluenceError(LyraError, RuntimeError):
    """Input the stage cannot start from (reported as a message)."""


# ----------------------------------------------------------------------------------- the model
def reference_geometry(cfg: InfluenceConfig, frame_rate: float) -> dict:
    """Config fields of the conditioner: excerpt frames, frames per token, tokens."""
    stride = max(1, int(round(frame_rate / cfg.token_rate_hz)))
    frames = int(round(cfg.reference_seconds * frame_rate)) // stride * stride
    return {"reference_frames": frames, "reference_stride": stride, "reference_tokens": frames // stride,
            "reference_width": cfg.width, "reference_codebooks": cfg.codebooks,
            "reference_codebook_size": cfg.codebook_size, "reference_quantizer": cfg.quantizer}


def attach_reference(model: LyraForMusicGeneration, cfg: InfluenceConfig, codec) -> ReferenceConditioner:
    """Give a text-to-music Lyra a (fresh) reference conditioner; its config records it, so the saved
    model is rebuilt with one by `from_pretrained`."""
    for key, value in {**reference_geometry(cfg, model.config.frame_rate),
                       "reference_latent_dim": int(codec.quantizer.stages[0].out_proj.out_channels)}.items():
        setattr(model.config, key, value)
    torch.manual_seed(cfg.seed)
    conditioner = ReferenceConditioner(model.config)
    conditioner.load_codec_latents(codec)
    model.condition.reference = conditioner
    return conditioner


def wrap_lora(model: LyraForMusicGeneration, cfg: InfluenceConfig):
    """PEFT LoRA on the attention projections; the base frozen, the conditioner trainable."""
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(model, LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha,
                                                  target_modules=list(cfg.lora_targets), lora_dropout=0.0,
                                                  bias="none"))
    for name, p in peft_model.named_parameters():
        if CONDITIONER in name:
            p.requires_grad_(True)
    return peft_model


def trainable_state(peft_model) -> dict[str, torch.Tensor]:
    """What a checkpoint holds of the model: trainable tensors + the conditioner's buffers (k-means state)."""
    state = {n: p.detach().clone() for n, p in peft_model.named_parameters() if p.requires_grad}
    state.update({n: b.detach().clone() for n, b in peft_model.named_buffers() if CONDITIONER in n})
    return state


def lr_at(step: int, cfg: InfluenceConfig) -> float:
    """Warm-up, then cosine decay to a tenth of the peak."""
    return warmup_cosine(step, cfg.lr, cfg.warmup_steps, cfg.steps, floor=0.1 * cfg.lr)


def target_frames(cfg: InfluenceConfig, model_config) -> int:
    """Length of the target windows fine-tuning trains on (at most the model's window)."""
    return min(cfg.target_frames or model_config.window_frames, model_config.window_frames)


# ----------------------------------------------------------------------------------- checkpoints
def run_fingerprint(cfg: InfluenceConfig, model_dir: Path, codec_dir: Path, tokens: Path) -> str:
    return fingerprint(cfg, "lyra_influence", (model_dir / "model.safetensors", codec_dir / "model.safetensors",
                                               tokens / "index.parquet"))


# ----------------------------------------------------------------------------------- training
@torch.no_grad()
def reference_gain(model, recs: list[Recording], cfg: InfluenceConfig, n_batches: int = 8, batch: int = 8,
                   early_steps: int = 32) -> dict:
    """Held-out next-code loss of target windows (the model's full window) with and without their
    recording's reference (nats per code): what the reference tells the model about the rest of the
    recording; `gain_early` the same over the window's first `early_steps` delayed steps, where the
    window's own context has not yet revealed the recording."""
    nan = float("nan")
    if not recs:
        return {"loss_with_reference": nan, "loss_without_reference": nan, "gain": nan, "gain_early": nan,
                "gain_ci95": [nan, nan], "n_windows": 0, "early_steps": early_steps}
    was = model.training
    model.eval()
    mc = model.config

    def per_step(batch, conditions) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(codes=batch.inputs, conditions=conditions).logits              # [B, K, S, V+1]
        ce = torch.nn.functional.cross_entropy(logits.float().permute(0, 3, 1, 2), batch.labels, ignore_index=-100,
                                               reduction="none")                       # [B, K, S]
        return ce, batch.labels != -100

    sums = np.zeros((2, 2))           # [with, without] x [all, early] loss sums
    counts = np.zeros(2)
    per_window = [[], []]             # per window: mean loss with, without
    for b in range(n_batches):
        pairs = pair_batch(recs, 10_000 + b, batch, reference_frames=mc.reference_frames,
                           window_frames=mc.window_frames, frame_rate=mc.frame_rate, special=mc.special_id,
                           text_dropout=1.0, reference_dropout=0.0, seed=cfg.seed + 1)
        early = torch.zeros_like(pairs.labels, dtype=torch.bool)
        early[:, :, :early_steps] = True
        for row, conditions in enumerate((pairs.conditions, pairs.conditions.drop("reference"))):
            ce, mask = per_step(pairs, conditions)
            sums[row, 0] += float(ce[mask].sum())
            sums[row, 1] += float(ce[mask & early].sum())
            per_window[row] += ((ce * mask).sum(dim=(1, 2)) / mask.sum(dim=(1, 2))).tolist()
            if row == 0:
                counts += [float(mask.sum()), float((mask & early).sum())]
    model.train(was)
    loss = sums / counts[None]
    diff = np.asarray(per_window[1]) - np.asarray(per_window[0])
    half = 1.96 * float(diff.std(ddof=1)) / np.sqrt(len(diff)) if len(diff) > 1 else nan
    return {"loss_with_reference": float(loss[0, 0]), "loss_without_reference": float(loss[1, 0]),
            "gain": float(loss[1, 0] - loss[0, 0]), "gain_early": float(loss[1, 1] - loss[0, 1]),
            "gain_ci95": [float(diff.mean()) - half, float(diff.mean()) + half],   # normal, over windows
            "n_windows": int(len(diff)), "early_steps": early_steps}


def fine_tune(model: LyraForMusicGeneration, recs: list[Recording], held: list[Recording], cfg: InfluenceConfig,
              checkpoints: ResumeFolder | None, log, stop_after: int | None = None) -> tuple[object, dict]:
    """Train LoRA + the conditioner on reference/target pairs of `recs`; returns (peft model, history).

    `stop_after` ends the run early (as a kill would), after that many steps, for the resume test."""
    torch.manual_seed(cfg.seed)
    peft_model = wrap_lora(model, cfg)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    mc = model.config
    history: dict = {"step": [], "loss": [], "aux": [], "code_perplexity_step": [], "code_perplexity": [],
                     "resumed_from_step": None}
    start = 0
    saved = checkpoints.load() if checkpoints else None
    if saved is not None:
        missing = set(saved["model"]) - set(dict(peft_model.named_parameters())) - set(dict(peft_model.named_buffers()))
        if missing:
            raise InfluenceError(f"checkpoint does not match the model: {sorted(missing)[:3]}")
        peft_model.load_state_dict(saved["model"], strict=False)
        opt.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["torch_rng"])
        start, history = saved["step"], saved["history"]
        history["resumed_from_step"] = start
        log.info("resumed from step %d", start)
    before = reference_gain(peft_model, held, cfg) if start == 0 else saved["gain_before"]
    peft_model.train()
    reference = model.condition.reference
    for step in range(start, cfg.steps):
        if stop_after is not None and step >= stop_after:
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        batch = pair_batch(recs, step, cfg.batch, reference_frames=mc.reference_frames, window_frames=target_frames(cfg, mc),
                           frame_rate=mc.frame_rate, special=mc.special_id, text_dropout=cfg.text_dropout,
                           reference_dropout=cfg.reference_dropout, seed=cfg.seed)
        out = peft_model(codes=batch.inputs, conditions=batch.conditions, labels=batch.labels)
        aux = cfg.commitment_weight * reference.commitment_loss + reference.fit_loss
        loss = out.loss + cfg.aux_weight * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if cfg.dead_code_interval and (step + 1) % cfg.dead_code_interval == 0 and hasattr(reference.quantizer,
                                                                                           "replace_dead_codes"):
            report = reference.quantizer.replace_dead_codes(1.0, torch.Generator().manual_seed(cfg.seed * 100_003 + step))
            history["code_perplexity_step"].append(step + 1)
            history["code_perplexity"].append([round(report[k][1], 2) for k in sorted(report)])
        history["step"].append(step + 1)
        history["loss"].append(out.loss.item())
        history["aux"].append(aux.item())
        if (step + 1) % 20 == 0:
            log.info("step %d/%d  loss %.3f  aux %.3f", step + 1, cfg.steps, float(out.loss), float(aux))
        if checkpoints and cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            checkpoints.save({"model": trainable_state(peft_model), "optimizer": opt.state_dict(), "step": step + 1,
                              "history": history, "torch_rng": torch.get_rng_state(), "gain_before": before})
    peft_model.eval()
    history["gain_before"] = before
    history["gain_after"] = reference_gain(peft_model, held, cfg)
    return peft_model, history
