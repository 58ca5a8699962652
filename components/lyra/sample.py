"""`lyra lm sample`: music from held-out captions, decoded, with evidence that the text matters.

For each of n prompts (held-out captions, spread over caption classes) the stage generates a
piece with the text and, as a control, the same seed without it; decodes the conditional
pieces (and the controls) with OmniCodec; writes `<n>_<clip>.wav` + `.json` (the `lyra generate` command that
reproduces it), `spectrograms.png` and `conditioning.json`; and reports (conditioning.py):

    caption_retrieval_real        the model's likelihood picks each held-out clip's own caption
                                  among the n prompts (chance: caption_retrieval_chance ~ 1/n)
    caption_retrieval_generated   the same for each generation and the prompt it was made from
    caption_gap_*_nats            how much likelier the codes are under their own caption
    conditioning_accuracy    probe(generation's codes) == prompt's class   (see conditioning.py); the
                             class is the clip's instrument where the corpus records it (what a
                             listener hears first), else a k-means cluster of its caption (probe_label)
    unconditional_accuracy   the same without the text (control)
    real_heldout_accuracy    the probe on real held-out clips (how separable the classes are)
    audio_*                  the same three from a probe on the decoded audio (mel statistics)
    chance                   majority-class rate among the prompts
    silent_fraction, rms_dbfs, length_ratio   the audio is there and as long as asked
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from components.common.atomic import atomic_dir, atomic_write_json
from components.common.audio import rms_dbfs, write_wav
from components.common.lineage import write_lineage
from components.common.mel import log_mel_spectrogram
from components.common.reporting import stage_run
from components.lyra import codec as codec_io
from components.lyra.conditioning import (CaptionClasses, ConditioningProbe, accuracy, caption_gap, caption_nll_matrix,
                                         majority_rate, retrieval_accuracy)
from components.lyra.config import GenerateConfig
from components.lyra.generate import (GenerationError, generate_codes, load_model, model_identity, reproduce_command,
                                      sampling_params)
from components.lyra.plots import plot_spectrograms
from components.tokens.dataset import TokenDataset

STAGE = "lyra_samples"
CODE_PATHS = ("components/lyra", "components/omnicodec")
SILENCE_DBFS = -60.0


def held_out_clips(tokens: Path) -> list:
    clips = []
    for split in ("valid", "test"):
        ds = TokenDataset(tokens, split=split)
        clips.extend(ds[i] for i in range(len(ds)))
    return clips


def choose_prompts(clips: list, classes: np.ndarray, n: int) -> list[int]:
    """n clips whose captions are as varied as possible: distinct captions, round-robin over classes,
    then again from the top when there are fewer distinct captions than prompts (each prompt gets
    its own seed, so a repeated caption is still a new piece)."""
    by_class: dict[int, list[int]] = {}
    seen: set[str] = set()
    for i, clip in enumerate(clips):
        caption = clip.captions[0] if clip.captions else ""
        if caption not in seen:
            seen.add(caption)
            by_class.setdefault(int(classes[i]), []).append(i)
    order = [i for depth in range(max((len(v) for v in by_class.values()), default=0))
             for c in sorted(by_class) for i in by_class[c][depth:depth + 1]]
    return [order[j % len(order)] for j in range(n)] if order else []


def decode_clips(codec, clips: list, max_frames: int, progress) -> list[np.ndarray]:
    """The first max_frames frames of each clip's codes, decoded to audio (one clip at a time: bounded memory)."""
    out = []
    for clip in progress(clips, desc="decoding clips for the audio probe", unit="clip"):
        codes = torch.from_numpy(np.asarray(clip.codes[:, :max_frames], dtype=np.int64))[None]
        out.append(codec_io.decode_pieces(codec, codes, torch.tensor([codes.shape[-1]]))[0])
    return out


def probe_classes(train_clips: list, held: list, cfg: GenerateConfig) -> tuple[str, list[str], np.ndarray, np.ndarray]:
    """(label kind, class names, training labels, held-out labels); labels index the names.

    The instrument when every clip has one (the corpus metadata): the most audible thing a caption
    says, so a generation's codes should show it. Otherwise k-means classes of the caption embeddings."""
    if all(c.instrument for c in [*train_clips, *held]):
        names = sorted({c.instrument for c in [*train_clips, *held]})
        code = {n: i for i, n in enumerate(names)}
        return ("instrument", names, np.array([code[c.instrument] for c in train_clips]),
                np.array([code[c.instrument] for c in held]))
    classes = CaptionClasses.fit(np.stack([c.text_embeddings[0] for c in train_clips]), cfg.n_classes, cfg.seed)
    names = [f"caption class {i}" for i in range(len(classes.centroids))]
    return ("caption_class", names, classes.assign(np.stack([c.text_embeddings[0] for c in train_clips])),
            classes.assign(np.stack([c.text_embeddings[0] for c in held])))


def run_sample_stage(cfg: GenerateConfig, model_dir, codec_dir, tokens, out, metrics_path=None) -> dict:
    from components.lyra.text import encode_prompts

    model_dir, codec_dir, tokens, out = Path(model_dir), Path(codec_dir), Path(tokens), Path(out)
    with stage_run(STAGE) as run:
        log = run.log
        model = load_model(model_dir, precision=cfg.precision)
        codec = codec_io.load_codec(codec_dir, device=next(model.parameters()).device)
        codec_io.check_compatible(codec, model.config)
        K, V = model.config.num_codebooks, model.config.codebook_size

        # --- the probe: a class per clip (instrument, else caption cluster), learnt from real training codes
        train = TokenDataset(tokens, split="train")
        if len(train) == 0:
            raise GenerationError(f"{tokens} has no training clips to fit the conditioning probe on")
        rng = np.random.default_rng(cfg.seed)
        probe_rows = np.sort(rng.permutation(len(train))[:cfg.probe_clips])
        train_clips = [train[int(i)] for i in probe_rows]
        held = held_out_clips(tokens)
        if not held:
            raise GenerationError(f"{tokens} has no held-out (valid/test) clips to take prompts from")
        probe_label, class_names, train_labels, held_labels = probe_classes(train_clips, held, cfg)
        probe = ConditioningProbe.on_codes(V, seed=cfg.seed).fit([c.codes for c in train_clips], train_labels)
        real_acc = accuracy(probe.predict([c.codes for c in held]), held_labels)
        # the same question asked of the music: real clips decoded by the codec, like the generations
        max_frames = int(round(cfg.sample_seconds * model.config.frame_rate))
        audio_probe = ConditioningProbe.on_audio(codec.sample_rate, seed=cfg.seed).fit(
            decode_clips(codec, train_clips, max_frames, run.progress), train_labels)
        audio_real_acc = accuracy(audio_probe.predict(decode_clips(codec, held, max_frames, run.progress)), held_labels)
        chosen = choose_prompts(held, held_labels, cfg.n_prompts)
        prompts = [held[i].captions[0] for i in chosen]
        prompt_classes = held_labels[chosen]
        embeddings = encode_prompts(prompts)                     # as `lyra generate` embeds them
        log.info("%d prompts from %d held-out clips, %d classes (%s); probe accuracy on real held-out clips %.2f "
                 "on codes, %.2f on audio", len(prompts), len(held), len(class_names), probe_label, real_acc, audio_real_acc)

        # --- generate: with the text, and the same seed without it (control)
        params = sampling_params(cfg)
        cond, uncond, gen_seconds, steps = [], [], 0.0, 0
        for i in run.progress(range(len(prompts)), desc="generating", unit="piece"):
            seed = cfg.seed + i
            g, dt = generate_codes(model, embeddings[i:i + 1], cfg.sample_seconds, params, seed)
            u, du = generate_codes(model, embeddings[i:i + 1], cfg.sample_seconds, params, seed, unconditional=True)
            cond.append(g)
            uncond.append(u)
            gen_seconds += dt
            steps += g.steps

        def trimmed(gen_list):
            return [g.codes[0, :, :int(g.lengths[0])].cpu().numpy() for g in gen_list]

        # --- caption retrieval by likelihood: real held-out clips, then the generations
        real_nll = caption_nll_matrix(model, [held[i].codes for i in chosen], embeddings,
                                      np.array([held[i].seconds_start for i in chosen]),
                                      np.array([held[i].seconds_total for i in chosen]))
        gen_nll = caption_nll_matrix(model, trimmed(cond), embeddings, np.zeros(len(cond)),
                                     np.full(len(cond), cfg.sample_seconds))
        real_retrieval, retrieval_chance = retrieval_accuracy(real_nll, embeddings)
        gen_retrieval, _ = retrieval_accuracy(gen_nll, embeddings)

        cond_pred, uncond_pred = probe.predict(trimmed(cond)), probe.predict(trimmed(uncond))
        cond_acc, uncond_acc = accuracy(cond_pred, prompt_classes), accuracy(uncond_pred, prompt_classes)
        cond_audio = [codec_io.decode_pieces(codec, g.codes, g.lengths)[0] for g in cond]
        audio_cond_pred = audio_probe.predict(cond_audio)
        audio_uncond_pred = audio_probe.predict([codec_io.decode_pieces(codec, u.codes, u.lengths)[0] for u in uncond])
        audio_cond_acc = accuracy(audio_cond_pred, prompt_classes)
        audio_uncond_acc = accuracy(audio_uncond_pred, prompt_classes)
        chance = majority_rate(prompt_classes)

        # --- decode, check and write
        requested = int(round(cfg.sample_seconds * model.config.frame_rate))
        with atomic_dir(out) as staging:
            mels, titles, durations, loudness, length_ratios = [], [], [], [], []
            for i, (g, audio) in enumerate(zip(cond, cond_audio)):
                name = f"{i:02d}_{held[chosen[i]].clip_id}"
                write_wav(staging / f"{name}.wav", audio, codec.sample_rate)
                seconds = len(audio) / codec.sample_rate
                level = rms_dbfs(audio)
                loudness.append(level)
                durations.append(seconds)
                length_ratios.append(int(g.lengths[0]) / requested)
                seed = cfg.seed + i
                atomic_write_json(staging / f"{name}.json", {
                    "prompt": prompts[i], "source_clip": held[chosen[i]].clip_id, "seed": seed,
                    "seconds_requested": cfg.sample_seconds, "seconds_generated": seconds, "frames": int(g.lengths[0]),
                    "sampling": params.__dict__, "precision": cfg.precision,
                    "class": class_names[prompt_classes[i]], "probe_class": class_names[cond_pred[i]],
                    "probe_class_without_text": class_names[uncond_pred[i]],
                    "audio_probe_class": class_names[audio_cond_pred[i]],
                    "audio_probe_class_without_text": class_names[audio_uncond_pred[i]], "rms_dbfs": level,
                    "model": model_identity(model_dir), "codec": model_identity(codec_dir),
                    "reproduce": reproduce_command(prompts[i], cfg.model_copy(update={"seed": seed}), cfg.sample_seconds,
                                                   os.fspath(model_dir), os.fspath(codec_dir), f"{name}.wav"),
                })
                if len(audio):
                    mel = log_mel_spectrogram(torch.from_numpy(audio), codec.sample_rate, n_fft=1024, n_mels=64)
                    mels.append(mel.numpy())
                    titles.append(f"{i:02d} [{class_names[prompt_classes[i]]} -> {class_names[audio_cond_pred[i]]}] {prompts[i]}")
            if mels:
                plot_spectrograms(staging / "spectrograms.png", mels, titles, [m.shape[-1] * 256 / codec.sample_rate for m in mels])
            silent = [level < SILENCE_DBFS for level in loudness]
            metrics = {
                "caption_retrieval_real": real_retrieval, "caption_retrieval_generated": gen_retrieval,
                "caption_retrieval_chance": retrieval_chance,
                "caption_gap_real_nats": caption_gap(real_nll), "caption_gap_generated_nats": caption_gap(gen_nll),
                "n_samples": len(cond), "n_classes": len(class_names), "probe_label": probe_label,
                "conditioning_accuracy": cond_acc, "unconditional_accuracy": uncond_acc, "chance": chance,
                "uniform_chance": 1.0 / len(class_names), "real_heldout_accuracy": real_acc,
                "conditioning_gain": cond_acc - uncond_acc,
                "audio_conditioning_accuracy": audio_cond_acc, "audio_unconditional_accuracy": audio_uncond_acc,
                "audio_real_heldout_accuracy": audio_real_acc,
                "silent_fraction": float(np.mean(silent)), "rms_dbfs_mean": float(np.mean([l for l in loudness if math.isfinite(l)] or [-math.inf])),
                "seconds_requested": cfg.sample_seconds, "seconds_generated_mean": float(np.mean(durations)),
                "length_ratio_mean": float(np.mean(length_ratios)), "length_ratio_min": float(np.min(length_ratios)),
                "generation_frames_per_second": steps / gen_seconds if gen_seconds else None,
                "sampling": params.__dict__,
            }
            atomic_write_json(staging / "conditioning.json", {
                "prompts": prompts, "probe_label": probe_label, "classes": [class_names[c] for c in prompt_classes],
                "probe_conditional": [class_names[c] for c in cond_pred],
                "probe_unconditional": [class_names[c] for c in uncond_pred], "probe_training_clips": len(train_clips),
                "audio_probe_conditional": [class_names[c] for c in audio_cond_pred],
                "audio_probe_unconditional": [class_names[c] for c in audio_uncond_pred],
                "nll_real_by_prompt": real_nll.round(4).tolist(), "nll_generated_by_prompt": gen_nll.round(4).tolist(),
                "held_out_clips": len(held), "metrics": metrics,
            })
            write_lineage(staging, stage=STAGE, inputs={"model": model_dir, "codec": codec_dir, "tokens": tokens},
                          params=cfg, code_paths=CODE_PATHS, extra={"metrics": metrics})
        log.info("caption retrieval by likelihood: %.2f on real held-out clips, %.2f on generations (chance %.2f); "
                 "own-caption gap %.3f / %.3f nats per code", real_retrieval, gen_retrieval, retrieval_chance,
                 metrics["caption_gap_real_nats"], metrics["caption_gap_generated_nats"])
        log.info("conditioning (%s): audio probe %.2f with text, %.2f without; code probe %.2f / %.2f; chance %.2f "
                 "(real held-out: audio %.2f, codes %.2f); %d/%d silent, length ratio %.2f", probe_label, audio_cond_acc,
                 audio_uncond_acc, cond_acc, uncond_acc, chance, audio_real_acc, real_acc, sum(silent), len(silent),
                 metrics["length_ratio_mean"])
        if (out / "spectrograms.png").is_file():
            run.add_image("spectrograms", out / "spectrograms.png")
        run.add_path("samples", out)
        run.finish(metrics, metrics_path)
    return metrics
