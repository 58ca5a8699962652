"""Lyra vs transformers' MusicgenForCausalLM at equal size: generation frames/s and training tokens/s.

Both models: hidden 256, 4 layers, 4 heads, MLP 1024, 4 codebooks of 1024 codes, random weights
(nothing downloads), same machine, same process, same threads. MusicGen's decoder also holds
unused cross-attention weights (they cost no compute without encoder states).

    generation  batch 1, N frames, top-k 250 sampling, KV cache (both); without and with
                classifier-free guidance (scale 3: two rows per step for both models).
                Lyra as `lyra generate` runs it: weight-only int8 decode steps on CPU
                (generate.decode_weights); also shown with its exact fp32 weights.
    training    forward + backward + AdamW step on the same batch of delayed codes;
                tokens = sequence positions (one frame-step of K codes each). Lyra as
                `lyra lm train` runs it: precision "auto" = bf16 autocast on CPUs with native
                bf16 matmuls (AVX512-BF16/AMX), else fp32; also shown in fp32, and both
                models under the same bf16 autocast (equal precision).

Each measurement runs Lyra and MusicGen back to back and the speedup is the median of these
paired ratios over the rounds, so load from other processes hits both alike. The last line is
the headline: the smaller of the two generation speedups (without / with guidance).

    python benchmarks/lm_speed.py [--frames 500] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

HIDDEN, LAYERS, HEADS, CODEBOOKS, CODES = 256, 4, 4, 4, 1024


def build_lyra(window_frames: int):
    from components.lyra.model import LyraConfig, LyraForMusicGeneration

    torch.manual_seed(0)
    config = LyraConfig(num_codebooks=CODEBOOKS, codebook_size=CODES, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                        num_attention_heads=HEADS, mlp_ratio=4, window_frames=window_frames, max_seconds=600.0,
                        text_every_step=True)        # as `lyra lm train` builds it (LyraModelConfig's default)
    return LyraForMusicGeneration(config)


def build_musicgen():
    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

    torch.manual_seed(0)
    config = MusicgenDecoderConfig(vocab_size=CODES, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                                   num_attention_heads=HEADS, ffn_dim=4 * HIDDEN, num_codebooks=CODEBOOKS,
                                   max_position_embeddings=4096, pad_token_id=CODES, bos_token_id=CODES)
    model = MusicgenForCausalLM(config)
    for key in ("pad_token_id", "bos_token_id", "decoder_start_token_id"):
        setattr(model.generation_config, key, CODES)
    return model


# ------------------------------------------------------------------------------ generation
def lyra_generation(model, frames: int, cfg: float, weights: str | None = None) -> float:
    """Frames per second of one piece, `frames` long, with the KV-cached sampler."""
    from components.lyra.conditioners import Conditions
    from components.lyra.config import GenerateConfig
    from components.lyra.sampling import Sampler, SamplingParams

    weights = weights or GenerateConfig().decode_weights
    sampler = Sampler(model.eval(), SamplingParams(temperature=1.0, top_k=250, cfg=cfg, allow_end=False,
                                                   decode_weights=weights))
    text = torch.randn(1, model.config.text_dim, generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    out = sampler.generate(Conditions.build(text, seconds_total=600.0), frames, generator=torch.Generator().manual_seed(0))
    elapsed = time.perf_counter() - start
    return out.codes.shape[-1] / elapsed


def musicgen_generation(model, frames: int, cfg: float) -> float:
    ids = torch.full((CODEBOOKS, 1), CODES)          # batch 1: K rows of BOS
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.eval().generate(ids, do_sample=True, top_k=250, max_new_tokens=frames + CODEBOOKS - 1,
                                    min_new_tokens=frames + CODEBOOKS - 1, num_return_sequences=1,
                                    guidance_scale=cfg if cfg != 1.0 else None)
    elapsed = time.perf_counter() - start
    return out.shape[-1] / elapsed


# -------------------------------------------------------------------------------- training
def training_batch(batch: int, frames: int):
    from components.lyra.delay import build_delay_pattern

    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, CODES, (batch, CODEBOOKS, frames), generator=g)
    delayed = build_delay_pattern(codes, CODES)                   # [B, K, S], pads = CODES (MusicGen's pad id)
    return delayed


def lyra_precision() -> bool:
    """Does `lyra lm train` (precision "auto") train in bf16 on this machine's CPU?"""
    from components.lyra.config import LMConfig
    from components.lyra.train import use_bf16

    return use_bf16(LMConfig(), torch.device("cpu"))


def autocast(bf16: bool):
    """The trainer's own bf16 context on CPU (components/lyra/train.py), for both models."""
    from components.lyra.train import bf16_autocast

    return bf16_autocast(bf16, torch.device("cpu"))


def lyra_training(model, delayed, steps: int, bf16: bool) -> float:
    from components.lyra.conditioners import Conditions
    from components.lyra.delay import shift_right

    special = model.config.special_id
    B, K, S = delayed.shape
    labels = delayed.masked_fill(delayed == CODES, -100)
    inputs = shift_right(delayed.masked_fill(delayed == CODES, special), special)
    conditions = Conditions.build(torch.randn(B, model.config.text_dim), seconds_total=60.0)
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def step():
        with autocast(bf16):
            loss = model(inputs, conditions, labels=labels).loss
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)

    step()                                                          # warm-up (allocations)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * B * S / (time.perf_counter() - start)


def musicgen_training(model, delayed, steps: int, bf16: bool = False) -> float:
    B, K, S = delayed.shape
    labels = delayed.transpose(1, 2).contiguous()                  # [B, S, K], pads are ignored by MusicGen
    inputs = torch.cat([torch.full((B, K, 1), CODES), delayed[:, :, :-1]], dim=-1).reshape(B * K, S)
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def step():
        with autocast(bf16):
            loss = model(input_ids=inputs, labels=labels).loss
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * B * S / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=500, help="frames generated per piece (500 = 10 s at 50 Hz)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are reported")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (intra-op)")
    parser.add_argument("--train-batch", type=int, default=8, help="windows per training step")
    parser.add_argument("--train-frames", type=int, default=256, help="frames per training window")
    parser.add_argument("--train-steps", type=int, default=5, help="timed training steps per round")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    lyra, musicgen = build_lyra(window_frames=args.frames + 1), build_musicgen()
    n_lyra, n_musicgen = (sum(p.numel() for p in m.parameters()) for m in (lyra, musicgen))
    print(f"threads {args.threads}; Lyra {n_lyra / 1e6:.2f} M parameters, MusicGen {n_musicgen / 1e6:.2f} M "
          f"(incl. {LAYERS * 4 * HIDDEN * HIDDEN / 1e6:.2f} M unused cross-attention)")

    from components.lyra.config import GenerateConfig

    bf16 = lyra_precision()
    print(f"Lyra decode weights: {GenerateConfig().decode_weights}; Lyra training precision: {'bf16 autocast' if bf16 else 'fp32'}")
    # warm-up: first calls pay for lazy initialisation in both libraries
    lyra_generation(lyra, 16, 3.0), lyra_generation(lyra, 16, 3.0, "model"), musicgen_generation(musicgen, 16, 3.0)
    delayed = training_batch(args.train_batch, args.train_frames)
    # (row, Lyra's measurement, MusicGen's; None = pair with the row above's MusicGen run of the same round)
    tasks = [
        ("generation", lambda: lyra_generation(lyra, args.frames, 1.0), lambda: musicgen_generation(musicgen, args.frames, 1.0)),
        ("generation_fp32", lambda: lyra_generation(lyra, args.frames, 1.0, "model"), None),
        ("generation_cfg", lambda: lyra_generation(lyra, args.frames, 3.0), lambda: musicgen_generation(musicgen, args.frames, 3.0)),
        ("generation_cfg_fp32", lambda: lyra_generation(lyra, args.frames, 3.0, "model"), None),
        ("training", lambda: lyra_training(lyra, delayed, args.train_steps, bf16), lambda: musicgen_training(musicgen, delayed, args.train_steps)),
        ("training_fp32", lambda: lyra_training(lyra, delayed, args.train_steps, False), None),
        ("training_both_bf16", lambda: lyra_training(lyra, delayed, args.train_steps, True),
         lambda: musicgen_training(musicgen, delayed, args.train_steps, True)),
    ]
    rates: dict[str, list[tuple[float, float]]] = {k: [] for k, _, _ in tasks}
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for r in range(args.rounds):
        peer = 0.0
        for key, lyra_fn, musicgen_fn in tasks:
            mine = lyra_fn()
            peer = musicgen_fn() if musicgen_fn is not None else peer      # back to back: both see the same load
            rates[key].append((mine, peer))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(
            f"{k} {v[-1][0]:.0f} vs {v[-1][1]:.0f}" for k, v in rates.items()), flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")

    labels = {"generation": "generation, no CFG (frames/s)", "generation_fp32": "  Lyra with exact fp32 weights",
              "generation_cfg": "generation, CFG 3 (frames/s)", "generation_cfg_fp32": "  Lyra with exact fp32 weights",
              "training": "training (tokens/s)", "training_fp32": "  Lyra in fp32",
              "training_both_bf16": "  both in bf16 autocast"}
    print(f"\n{'median over rounds':32s} {'Lyra':>10s} {'MusicGen':>10s} {'speedup':>8s}")
    speedup = {}
    for key, pairs in rates.items():
        speedup[key] = statistics.median(a / b for a, b in pairs)      # paired: ratios of back-to-back runs
        print(f"{labels[key]:32s} {statistics.median(a for a, _ in pairs):10.0f} "
              f"{statistics.median(b for _, b in pairs):10.0f} {speedup[key]:7.2f}x")
    print(f"lyra_vs_musicgen_training_speedup: {speedup['training']:.2f}")
    print(f"lyra_vs_musicgen_generation_speedup: {min(speedup['generation'], speedup['generation_cfg']):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
