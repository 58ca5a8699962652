"""Best-of-8 generation (one batch + decode + ORAQL scoring) against one generation, 8 sequential
generations, and transformers' MusicgenForCausalLM generating 8 sequences in one batch.

Models: Lyra and MusicGen at equal size (benchmarks/lm_speed.py builds both: hidden 256, 4 layers,
4 heads, 4 codebooks of 1024, random weights); OmniCodec and ORAQL with the tiny profile's
architectures (random weights: speed does not depend on what the weights learnt). Everything runs
with classifier-free guidance 3 and top-k 250, as `lyra generate` does; the same process, threads
and rounds for all, and every ratio is the median of back-to-back pairs.

    one          Lyra, 1 piece, + OmniCodec decode                     (`lyra generate`)
    best_of_8    Lyra, 8 pieces in one batch, + decode 8 + ORAQL scores 8   (`lyra generate --best-of 8`)
    sequential   8 x one, then ORAQL scores 8
    musicgen_8   MusicGen generating 8 sequences in one batch (codes only: no decode, no scoring)

Targets (issue 11): best_of_8 / one <= 2.5; musicgen_8 / best_of_8 >= 3.

    python benchmarks/best_of_n.py [--seconds 10] [--rounds 3] [--threads 1]
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lm_speed import CODEBOOKS, CODES, build_lyra, build_musicgen  # noqa: E402

N = 8
CFG = 3.0


def build_codec():
    from components.config import load_stage_config
    from components.omnicodec import build_codec as build
    from components.omnicodec.config import CodecConfig

    cfg = load_stage_config("codec", CodecConfig, params_path=Path(__file__).resolve().parents[1] / "params.yaml",
                            profile="tiny")
    return build(cfg.model, seed=0).eval()


def build_oraql():
    from components.oraql.config import OraqlModelConfig
    from components.oraql.model import Oraql

    torch.manual_seed(0)
    return Oraql(OraqlModelConfig()).eval()


def lyra_pieces(model, codec, frames: int, batch: int, seed: int) -> list[np.ndarray]:
    """`lyra generate`'s path: sample codes for `batch` copies of one prompt, decode them."""
    from components.omnicodec.decoding import decode_pieces
    from components.lyra.conditioners import Conditions
    from components.lyra.config import GenerateConfig
    from components.lyra.sampling import Sampler, SamplingParams

    params = SamplingParams(temperature=1.0, top_k=250, cfg=CFG, allow_end=False,
                            decode_weights=GenerateConfig().decode_weights)
    text = torch.randn(1, model.config.text_dim, generator=torch.Generator().manual_seed(0)).repeat(batch, 1)
    conditions = Conditions.build(text, seconds_total=frames / model.config.frame_rate)
    out = Sampler(model, params).generate(conditions, frames, generator=torch.Generator().manual_seed(seed))
    return decode_pieces(codec, out.codes, out.lengths)


def one(model, codec, frames):
    return lyra_pieces(model, codec, frames, 1, 0)


def best_of_8(model, codec, oraql, frames):
    from components.oraql.score import score_batch

    audios = lyra_pieces(model, codec, frames, N, 0)
    scores = score_batch(oraql, audios, codec.sample_rate)[:, 0]
    return audios[int(np.argmax(scores))]


def sequential(model, codec, oraql, frames):
    from components.oraql.score import score_batch

    audios = [lyra_pieces(model, codec, frames, 1, seed)[0] for seed in range(N)]
    scores = score_batch(oraql, audios, codec.sample_rate)[:, 0]
    return audios[int(np.argmax(scores))]


def musicgen_8(model, frames):
    ids = torch.full((N * CODEBOOKS, 1), CODES)          # batch 8: K rows of BOS per sequence
    with torch.inference_mode():
        return model.eval().generate(ids, do_sample=True, top_k=250, max_new_tokens=frames + CODEBOOKS - 1,
                                     min_new_tokens=frames + CODEBOOKS - 1, num_return_sequences=1,
                                     guidance_scale=CFG)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each piece (50 frames per second)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians of paired ratios")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (intra-op)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    frames = int(round(args.seconds * 50))
    lyra, musicgen, codec, oraql = build_lyra(window_frames=frames + 1), build_musicgen(), build_codec(), build_oraql()
    print(f"threads {args.threads}; {args.seconds:g} s pieces ({frames} frames), CFG {CFG:g}, top-k 250; "
          f"Lyra {sum(p.numel() for p in lyra.parameters()) / 1e6:.2f} M, "
          f"MusicGen {sum(p.numel() for p in musicgen.parameters()) / 1e6:.2f} M parameters")
    one(lyra, codec, 16), best_of_8(lyra, codec, oraql, 16), musicgen_8(musicgen, 16)          # warm-up
    rows: dict[str, list[float]] = {"one": [], "best_of_8": [], "sequential": [], "musicgen_8": []}
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for r in range(args.rounds):
        rows["one"].append(timed(lambda: one(lyra, codec, frames)))
        rows["best_of_8"].append(timed(lambda: best_of_8(lyra, codec, oraql, frames)))
        rows["musicgen_8"].append(timed(lambda: musicgen_8(musicgen, frames)))
        rows["sequential"].append(timed(lambda: sequential(lyra, codec, oraql, frames)))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in rows.items()), flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    ratio = lambda a, b: statistics.median(x / y for x, y in zip(rows[a], rows[b]))   # noqa: E731
    print(f"\n{'median seconds':28s} " + "  ".join(f"{k} {statistics.median(v):.2f}" for k, v in rows.items()))
    print(f"best-of-8 / one generation:      {ratio('best_of_8', 'one'):.2f}x  (target <= 2.5)")
    print(f"8 sequential / best-of-8:         {ratio('sequential', 'best_of_8'):.2f}x faster batched")
    print(f"best_of_8_vs_musicgen_batch_speedup: {ratio('musicgen_8', 'best_of_8'):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
