"""`lyra codec train | eval | encode | decode`.

    lyra codec train  --curated data/curated --out data/models/omnicodec [--work-dir DIR] --metrics PATH
    lyra codec eval   --model data/models/omnicodec --curated data/curated --out data/eval/omnicodec --metrics PATH
    lyra codec encode song.wav --model data/models/omnicodec --out song.npz [--bitrate 1.0 | --n-quantizers 2]
    lyra codec decode song.npz --model data/models/omnicodec --out song.wav
"""

from __future__ import annotations

import argparse
from pathlib import Path

from components.config import add_config_arguments, config_from_args


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="<action>")

    train = sub.add_parser("train", help="train OmniCodec on curated clips (resumable; torchrun when nproc > 1)",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train.add_argument("--curated", required=True, type=Path, help="curated folder (manifest.parquet + clips/)")
    train.add_argument("--out", required=True, type=Path, help="model folder, replaced atomically at the end")
    train.add_argument("--work-dir", type=Path, default=None,
                       help="where resumable checkpoints live while training (default: .<out>.checkpoints beside it); "
                            "rerunning the same command after a kill resumes from there")
    train.add_argument("--stop-after", type=int, default=None, metavar="STEP",
                       help="stop right after STEP's checkpoint, as if killed (rerun to resume)")
    train.add_argument("--metrics", type=Path, default=None, help="write the run's metrics JSON here")
    add_config_arguments(train)
    train.set_defaults(func=_train)

    ev = sub.add_parser("eval", help="ViSQOL / mel distance / SI-SDR / codebook usage per bitrate, vs an untrained codec",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ev.add_argument("--model", required=True, type=Path, help="trained OmniCodec folder")
    ev.add_argument("--curated", required=True, type=Path, help="curated folder; the 'test' split is evaluated")
    ev.add_argument("--out", required=True, type=Path, help="eval folder (metrics.json, plots, examples), atomic")
    ev.add_argument("--metrics", type=Path, default=None, help="also write the metrics JSON here")
    add_config_arguments(ev)
    ev.set_defaults(func=_eval)

    enc = sub.add_parser("encode", help="encode an audio file (any rate/channels) into codes (.npz)",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    enc.add_argument("input", type=Path, help="audio file (wav/flac/ogg/mp3); downmixed and resampled to the codec's rate")
    enc.add_argument("--model", required=True, type=Path, help="trained OmniCodec folder")
    enc.add_argument("--out", required=True, type=Path, help="codes file (.npz)")
    rate = enc.add_mutually_exclusive_group()
    rate.add_argument("--n-quantizers", type=int, default=None, help="codebooks to keep (default: all)")
    rate.add_argument("--bitrate", type=float, default=None, metavar="KBPS",
                      help="target bitrate in kbps: the most codebooks that fit")
    enc.add_argument("--metrics", type=Path, default=None, help="write a small JSON report here")
    enc.set_defaults(func=_encode)

    dec = sub.add_parser("decode", help="decode a codes file (.npz) back to a wav",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    dec.add_argument("input", type=Path, help="codes file written by `lyra codec encode`")
    dec.add_argument("--model", required=True, type=Path, help="the OmniCodec folder the codes were made with")
    dec.add_argument("--out", required=True, type=Path, help="output wav (mono)")
    dec.add_argument("--sample-rate", type=int, default=None,
                     help="resample the output to this rate (default: the codec's own rate)")
    dec.add_argument("--metrics", type=Path, default=None, help="write a small JSON report here")
    dec.set_defaults(func=_decode)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _train(args) -> int:
    from components.common.distributed import relaunch_under_torchrun, shutdown
    from components.common.reporting import stage_run
    from components.omnicodec.config import CodecConfig
    from components.omnicodec.data import split_clips
    from components.omnicodec.train import run_training

    cfg = config_from_args("codec", CodecConfig, args)
    split_clips(args.curated, ("train",))     # bad input fails here, once, before any worker process starts
    code = relaunch_under_torchrun(cfg.nproc)
    if code is not None:
        return code
    try:
        with stage_run("omnicodec") as run:
            result = run_training(cfg, args.curated, args.out, run, work_dir=args.work_dir, stop_after=args.stop_after)
            if result.finished:
                run.finish(result.metrics, args.metrics)
    finally:
        shutdown()
    return 0


def _eval(args) -> int:
    from components.common.reporting import stage_run
    from components.omnicodec.config import CodecEvalConfig
    from components.omnicodec.evaluate import run_evaluation

    cfg = config_from_args("codec_eval", CodecEvalConfig, args)
    with stage_run("omnicodec_eval") as run:
        metrics = run_evaluation(cfg, args.model, args.curated, args.out, run)
        run.finish(metrics, args.metrics)
    return 0


def _encode(args) -> int:
    from components.omnicodec.coding import encode_file

    report = encode_file(args.input, args.model, args.out, n_quantizers=args.n_quantizers, bitrate_kbps=args.bitrate)
    _report(report, args.metrics)
    return 0


def _decode(args) -> int:
    from components.omnicodec.coding import decode_file

    report = decode_file(args.input, args.model, args.out, sample_rate=args.sample_rate)
    _report(report, args.metrics)
    return 0


def _report(report: dict, metrics_path) -> None:
    from components.common.atomic import atomic_write_json

    print(", ".join(f"{k}={v}" for k, v in report.items()))
    if metrics_path is not None:
        atomic_write_json(metrics_path, report)
