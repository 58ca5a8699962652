"""Encode + decode speed of OmniCodec next to the EnCodec and DAC 24 kHz architectures (CPU).

All three are built with random weights in this process (nothing downloads): OmniCodec's default
(gpu-profile) architecture at its default bitrate (4 codebooks = 2.0 kbps), transformers'
`EncodecModel(EncodecConfig())` at 1.5 kbps (2 codebooks) and `DacModel(DacConfig())` at full
depth. Each codec encodes and decodes the same 10 s of audio; the best of `--repeats` timings is kept.

    python benchmarks/codec_speed.py [--seconds 10] [--threads 1 2] [--repeats 3] [--skip-dac]

Last line: `omnicodec_vs_encodec_speedup: X` (EnCodec time / OmniCodec time, 1 thread).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402


def omnicodec_round_trip():
    from components.omnicodec.config import CodecModelConfig
    from components.omnicodec.model import build_codec

    codec = build_codec(CodecModelConfig.gpu_default(), seed=0).eval().fuse_weight_norm()
    params = sum(p.numel() for p in codec.parameters())
    return (lambda wav: codec.decode(codec.encode(wav))), params, f"{codec.bitrate() / 1000:.2f} kbps"


def encodec_round_trip():
    from transformers import EncodecConfig, EncodecModel

    model = EncodecModel(EncodecConfig()).eval()
    params = sum(p.numel() for p in model.parameters())

    def run(wav):
        out = model.encode(wav, bandwidth=1.5)
        return model.decode(out.audio_codes, out.audio_scales)[0]

    return run, params, "1.50 kbps"


def dac_round_trip():
    from transformers import DacConfig, DacModel

    model = DacModel(DacConfig()).eval()
    params = sum(p.numel() for p in model.parameters())

    def run(wav):
        codes = model.encode(wav).audio_codes
        return model.decode(audio_codes=codes).audio_values

    return run, params, f"{model.config.n_codebooks} codebooks"


def best_time(fn, wav, repeats: int) -> float:
    with torch.inference_mode():
        fn(wav[..., : wav.shape[-1] // 10])  # warm-up (allocator, oneDNN primitives)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn(wav)
            times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="audio length encoded + decoded")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts to time")
    parser.add_argument("--repeats", type=int, default=3, help="timings per codec; the best is kept")
    parser.add_argument("--skip-dac", action="store_true", help="DAC 24 kHz takes ~25 s per run on 1 thread")
    args = parser.parse_args()

    torch.manual_seed(0)
    wav = 0.1 * torch.randn(1, 1, int(args.seconds * 24_000))
    codecs = {"omnicodec": omnicodec_round_trip(), "encodec_24khz": encodec_round_trip()}
    if not args.skip_dac:
        codecs["dac_24khz"] = dac_round_trip()
    results: dict[tuple[str, int], float] = {}
    print(f"encode + decode of {args.seconds:.0f} s of 24 kHz mono audio, best of {args.repeats}, CPU")
    print(f"{'codec':15s} {'params':>8s} {'setting':>12s} " + " ".join(f"{f'{t} thr (s)':>10s} {'RTF':>7s}" for t in args.threads))
    for name, (fn, params, setting) in codecs.items():
        cells = []
        for threads in args.threads:
            torch.set_num_threads(threads)
            seconds = best_time(fn, wav, 1 if name == "dac_24khz" else args.repeats)
            results[(name, threads)] = seconds
            cells.append(f"{seconds:10.3f} {seconds / args.seconds:7.4f}")
        print(f"{name:15s} {params / 1e6:7.1f}M {setting:>12s} " + " ".join(cells), flush=True)
    for threads in args.threads:
        print(f"speedup vs EnCodec, {threads} thread(s): "
              f"{results[('encodec_24khz', threads)] / results[('omnicodec', threads)]:.2f}x")
    first = args.threads[0]
    print(f"omnicodec_vs_encodec_speedup: {results[('encodec_24khz', first)] / results[('omnicodec', first)]:.2f}")


if __name__ == "__main__":
    main()
