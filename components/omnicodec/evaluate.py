"""`lyra codec eval`: quality of a trained OmniCodec on held-out pieces, at every bitrate, next to an
untrained codec of the same config and init seed (the floor any training must clear).

Per (model, n_quantizers): ViSQOL (audio mode, 48 kHz), multi-scale mel distance, SI-SDR, bitrate.
Per model at full depth: codebook perplexity/usage, how predictable the codes are for an LM
(unigram and next-code conditional entropy of each codebook, in bits: lower = easier to model),
and whether the codes carry the clip at all: `code_information_mel_gap` is the mel distance of
clip i decoded from *another* clip's codes minus its distance decoded from its own codes. A codec
whose decoder ignores its codes (it plays the corpus' average spectrum whatever it is given) has a
gap of ~0 even when its mel distance and ViSQOL beat an untrained codec's. `frame_periodic_energy`
is the share of the decoded energy in one hop-long waveform repeated every frame (a drone at the
frame rate and its harmonics; music itself has ~0.01 here). `mel_distance_unquantized` decodes the
encoder's latent with no quantizer at all: the ceiling no bitrate can pass, so per-bitrate rows that
sit on it mean the encoder/decoder, not the codes, limit quality.

metrics.json keys (the default bitrate = all K codebooks):
    visqol, mel_distance, si_sdr, bitrate_kbps, n_quantizers, codebook_perplexity, codebook_usage,
    code_entropy_bits, code_conditional_entropy_bits, code_information_mel_gap, frame_periodic_energy,
    input_frame_periodic_energy, mel_distance_unquantized, per_bitrate[...],
    untrained.{visqol, mel_distance, si_sdr, per_bitrate (the full bitrate only)}, visqol_gain_over_untrained,
    n_clips, split,
    ood.{visqol, mel_distance, code_information_mel_gap, per_bitrate, n_clips}, ood_visqol,
    ood_minus_in_distribution_visqol   (the `ood` split: pieces never trained on, timbres never heard)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from components.common.atomic import atomic_write_json
from components.common.audio import write_wav
from components.common.metrics import pick
from components.omnicodec import plots
from components.omnicodec.config import CodecEvalConfig
from components.omnicodec.data import read_segment, split_clips
from components.omnicodec.losses import MultiScaleMelLoss, si_sdr
from components.omnicodec.model import build_codec, load_codec, read_model_config
from components.omnicodec.quantizer import code_perplexity



def code_entropies(codes: list[np.ndarray], codebook_size: int) -> tuple[list[float], list[float]]:
    """Per codebook: H(c_t) and H(c_t | c_{t-1}) in bits, from codes [K, frames] of several clips.

    The conditional entropy is a plug-in estimate (biased low on little data); it tells how much a
    first-order model already predicts, i.e. how much structure an LM can pick up.
    """
    unigram, conditional = [], []
    for k in range(codes[0].shape[0]):
        seq = np.concatenate([c[k] for c in codes])
        p = np.bincount(seq, minlength=codebook_size) / len(seq)
        unigram.append(float(-(p[p > 0] * np.log2(p[p > 0])).sum()))
        pairs = np.concatenate([c[k, :-1].astype(np.int64) * codebook_size + c[k, 1:] for c in codes])
        joint = np.unique(pairs, return_counts=True)[1] / len(pairs)
        prev = np.bincount(np.concatenate([c[k, :-1] for c in codes]), minlength=codebook_size) / len(pairs)
        h_joint = float(-(joint * np.log2(joint)).sum())
        h_prev = float(-(prev[prev > 0] * np.log2(prev[prev > 0])).sum())
        conditional.append(h_joint - h_prev)
    return unigram, conditional


@torch.no_grad()
@torch.no_grad()
def code_information_gap(codec, clips_audio: list[np.ndarray], codes: list[np.ndarray], mel_loss) -> float | None:
    """Mean over clips i of mel(decode(codes of clip i+1), clip i) - mel(decode(codes of clip i), clip i),
    both over the frames the two clips share. ~0 when the decoder's output does not depend on its codes."""
    if len(codes) < 2:
        return None
    gaps = []
    for i, ref in enumerate(clips_audio):
        other = codes[(i + 1) % len(codes)]
        frames = min(codes[i].shape[-1], other.shape[-1])
        decoded = [codec.decode(torch.from_numpy(c[:, :frames])[None]).float() for c in (codes[i], other)]
        n = min(len(ref), *(d.shape[-1] for d in decoded))
        wav = torch.from_numpy(ref[:n])[None, None]
        own, swapped = (float(mel_loss(d[..., :n], wav)) for d in decoded)
        gaps.append(swapped - own)
    return float(np.mean(gaps))


def fmt_value(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def evaluate_out_of_distribution(codec, cfg: CodecEvalConfig, curated: Path, n_list: list[int],
                                 seconds: float | None, run) -> dict[str, Any] | None:
    """The trained codec on `ood` clips (pieces never trained on, played by timbres no training track
    uses), measured like the in-distribution clips; None when the corpus has no such split."""
    from components.omnicodec.data import DataError

    try:
        _, clips = split_clips(curated, ("ood",))
    except DataError:
        return None
    clips = spread(clips, cfg.max_clips)
    audio = [read_segment(c, 0.0, seconds, codec.sample_rate) for c in clips]
    scores = evaluate_codec(codec, audio, n_list, use_visqol=cfg.visqol, progress=run.progress)
    default = scores["per_bitrate"][-1]
    return {"visqol": default["visqol"], "mel_distance": default["mel_distance"], "si_sdr": default["si_sdr"],
            "code_information_mel_gap": scores["code_information_mel_gap"],
            "mel_distance_unquantized": scores["mel_distance_unquantized"], "per_bitrate": scores["per_bitrate"],
            "n_clips": len(clips), "clip_ids": [c.clip_id for c in clips]}


def frame_periodic_share(wav: np.ndarray, hop: int) -> float:
    """Share of the energy of `wav` [n] in its frame-periodic part: the mean hop-long frame, repeated."""
    n = len(wav) // hop
    if n < 2:
        return float("nan")
    frames = np.asarray(wav[:n * hop], dtype=np.float64).reshape(n, hop)
    total = float((frames ** 2).sum())
    return float(n * (frames.mean(axis=0) ** 2).sum() / total) if total > 0 else float("nan")


def evaluate_codec(codec, clips_audio: list[np.ndarray], n_quantizer_list: list[int], *, use_visqol: bool,
                   progress=lambda it, **kw: it, keep_examples: int = 0) -> dict[str, Any]:
    """Scores of `codec` (OmniCodec-like: encode/decode/bitrate/sample_rate/hop_length) on mono clips at its rate."""
    from components.omnicodec.visqol_score import visqol

    sr = codec.sample_rate
    mel_loss = MultiScaleMelLoss(sr)
    rows, examples, all_codes, periodic, input_periodic, unquantized = [], {}, [], [], [], []
    jobs = [(n, i) for n in n_quantizer_list for i in range(len(clips_audio))]
    scores: dict[int, dict[str, list[float]]] = {n: {"visqol": [], "mel_distance": [], "si_sdr": []} for n in n_quantizer_list}
    for n, i in progress(jobs, desc="eval", unit="clip"):
        ref = clips_audio[i]
        wav = torch.from_numpy(ref)[None, None]
        codes = codec.encode(wav, n_quantizers=n)
        out = codec.decode(codes)[..., : len(ref)].float()
        deg = out[0, 0].numpy()
        if n == max(n_quantizer_list):
            all_codes.append(codes[0].numpy())
            periodic.append(frame_periodic_share(deg, codec.hop_length))
            input_periodic.append(frame_periodic_share(ref, codec.hop_length))
            if hasattr(codec, "autoencode"):
                unquantized.append(float(mel_loss(codec.autoencode(wav)[..., : len(ref)].float(), wav)))
            if i < keep_examples:
                examples[i] = deg
        scores[n]["mel_distance"].append(float(mel_loss(out, wav)))
        scores[n]["si_sdr"].append(float(si_sdr(out[0, 0], wav[0, 0])))
        if use_visqol:
            scores[n]["visqol"].append(visqol(ref, deg, sr))
    for n in n_quantizer_list:
        rows.append({"n_quantizers": n, "bitrate_kbps": codec.bitrate(n) / 1000.0,
                     **{k: (float(np.mean(v)) if v else None) for k, v in scores[n].items()}})
    information_gap = code_information_gap(codec, clips_audio, all_codes, mel_loss)
    full = torch.from_numpy(np.concatenate(all_codes, axis=-1))[None]
    perplexity = code_perplexity(full, codec.codebook_size)
    unigram, conditional = code_entropies(all_codes, codec.codebook_size)
    return {
        "per_bitrate": rows,
        "codebook_perplexity": perplexity,
        "codebook_usage": [float((torch.bincount(full[0, k], minlength=codec.codebook_size) > 0).float().mean())
                           for k in range(full.shape[1])],
        "code_entropy_bits": unigram,
        "code_conditional_entropy_bits": conditional,
        "code_information_mel_gap": information_gap,
        "frame_periodic_energy": float(np.mean(periodic)),
        # the same encoder and decoder with no quantizer: rows near it mean the autoencoder, not the
        # bitrate, limits quality (more codebooks cannot help)
        "mel_distance_unquantized": float(np.mean(unquantized)) if unquantized else None,
        "input_frame_periodic_energy": float(np.mean(input_periodic)),
        "examples": examples,
    }


def spread(clips: list, n: int) -> list:
    """n clips evenly spaced through the (clip_id-sorted) list, so they span many pieces and timbres."""
    if n <= 0 or n >= len(clips):
        return clips
    return [clips[i] for i in np.linspace(0, len(clips) - 1, n).round().astype(int)]


# the headline figures, by path in {"trained": its figures, "at": its figures at the full bitrate}
HEADLINE = {
    "visqol": "at.visqol", "mel_distance": "at.mel_distance", "code_information_mel_gap": "trained.code_information_mel_gap",
    "si_sdr": "at.si_sdr", "frame_periodic_energy": "trained.frame_periodic_energy",
    "input_frame_periodic_energy": "trained.input_frame_periodic_energy",
    "mel_distance_unquantized": "trained.mel_distance_unquantized", "bitrate_kbps": "at.bitrate_kbps",
    "n_quantizers": "at.n_quantizers", "codebook_perplexity": "trained.codebook_perplexity",
    "codebook_usage": "trained.codebook_usage", "code_entropy_bits": "trained.code_entropy_bits",
    "code_conditional_entropy_bits": "trained.code_conditional_entropy_bits", "per_bitrate": "trained.per_bitrate",
}
UNTRAINED = {"visqol": "at.visqol", "mel_distance": "at.mel_distance", "si_sdr": "at.si_sdr",
             "per_bitrate": "trained.per_bitrate", "codebook_perplexity": "trained.codebook_perplexity",
             "code_information_mel_gap": "trained.code_information_mel_gap",
             "frame_periodic_energy": "trained.frame_periodic_energy"}


def codec_metrics(trained: dict, baseline: dict, ood: dict | None, cfg: CodecEvalConfig, codec, clips, split) -> dict:
    """The metrics file: the trained codec at the full bitrate, the same network untrained, out of distribution."""
    default, base_default = trained["per_bitrate"][-1], baseline["per_bitrate"][-1]
    return {
        **pick({"trained": trained, "at": default}, HEADLINE),
        "untrained": pick({"trained": baseline, "at": base_default}, UNTRAINED),
        "visqol_gain_over_untrained": (default["visqol"] - base_default["visqol"]) if cfg.visqol else None,
        "mel_distance_gain_over_untrained": base_default["mel_distance"] - default["mel_distance"],
        "n_clips": len(clips), "split": split, "clip_ids": [c.clip_id for c in clips], "ood": ood,
        "ood_visqol": ood["visqol"] if ood else None,
        "ood_minus_in_distribution_visqol": (ood["visqol"] - default["visqol"])
        if ood and ood["visqol"] is not None and default["visqol"] is not None else None,
        "clip_seconds": cfg.clip_seconds, "frame_rate": codec.frame_rate, "sample_rate": codec.sample_rate,
    }


def log_summary(log, metrics: dict) -> None:
    fmt, ood = fmt_value, metrics["ood"]
    if ood:
        log.info("out of distribution (%d clips of unseen pieces and timbres) at %.2f kbps: ViSQOL %s, mel "
                 "distance %s, information gap %s", ood["n_clips"], metrics["bitrate_kbps"], fmt(ood["visqol"]),
                 fmt(ood["mel_distance"]), fmt(ood["code_information_mel_gap"]))
    log.info("at %.2f kbps: ViSQOL %s (untrained %s), mel distance %s (untrained %s), SI-SDR %s dB; "
             "mel distance from another clip's codes minus own: %s (untrained %s); "
             "frame-periodic share of the decoded energy %s (input %s); mel distance without quantizer %s",
             metrics["bitrate_kbps"], fmt(metrics["visqol"]), fmt(metrics["untrained"]["visqol"]),
             fmt(metrics["mel_distance"]), fmt(metrics["untrained"]["mel_distance"]), fmt(metrics["si_sdr"]),
             fmt(metrics["code_information_mel_gap"]), fmt(metrics["untrained"]["code_information_mel_gap"]),
             fmt(metrics["frame_periodic_energy"]), fmt(metrics["input_frame_periodic_energy"]),
             fmt(metrics["mel_distance_unquantized"]))


def run_evaluation(cfg: CodecEvalConfig, model_dir: Path, curated: Path, out: Path, run) -> dict[str, Any]:
    codec = load_codec(model_dir)
    arch, extra = read_model_config(model_dir)
    untrained = build_codec(arch, int(extra.get("init_seed", 0))).eval()
    split, clips = split_clips(curated, ("test", "valid"))
    clips = spread(clips, cfg.max_clips)
    seconds = cfg.clip_seconds if cfg.clip_seconds > 0 else None
    audio = [read_segment(c, 0.0, seconds, codec.sample_rate) for c in clips]
    n_list = sorted(set(cfg.n_quantizers)) or list(range(1, codec.num_codebooks + 1))
    bad = [n for n in n_list if not 1 <= n <= codec.num_codebooks]
    if bad:
        from components.config import ConfigError

        raise ConfigError(f"codec_eval.n_quantizers {bad} outside 1..{codec.num_codebooks}")
    run.log.info("evaluating %s on %d %s clips (%.0f s) at n_quantizers %s, trained and untrained", model_dir,
                 len(clips), split, sum(len(a) for a in audio) / codec.sample_rate, n_list)

    trained = evaluate_codec(codec, audio, n_list, use_visqol=cfg.visqol, progress=run.progress,
                             keep_examples=cfg.n_examples)
    # the untrained floor at the gated (full) bitrate only: below it an untrained codec's figures say nothing
    # new, and its ViSQOL at every bitrate was a quarter of the stage's time
    baseline = evaluate_codec(untrained, audio, n_list[-1:], use_visqol=cfg.visqol, progress=run.progress)
    ood = evaluate_out_of_distribution(codec, cfg, curated, n_list, seconds, run)
    metrics = codec_metrics(trained, baseline, ood, cfg, codec, clips, split)
    with run.output(out, inputs={"model": model_dir, "curated": curated}, params=cfg,
                    lineage={"metrics": {k: v for k, v in metrics.items() if not isinstance(v, (list, dict))}}) as staged:
        atomic_write_json(staged.dir / "metrics.json", metrics)
        plots.quality_vs_bitrate(trained["per_bitrate"], baseline["per_bitrate"],
                                 staged.image("quality_vs_bitrate", "quality_vs_bitrate.png"),
                                 ood["per_bitrate"] if ood else None)
        for i, deg in trained["examples"].items():
            write_wav(staged.dir / "examples" / f"{clips[i].clip_id}_input.wav", audio[i], codec.sample_rate)
            write_wav(staged.dir / "examples" / f"{clips[i].clip_id}_decoded.wav", np.clip(deg, -1, 1), codec.sample_rate)
    run.add_path("eval_dir", out)
    log_summary(run.log, metrics)
    return metrics
