"""`lyra lm sample`: music from held-out captions, judged by a model that is not Lyra.

    test-split clips --(n prompts: a clip and one of its phrasings, spread over instruments)--> captions
      with text   : Lyra(caption, seed s)        --OmniCodec--> audio --judge--> instrument, collection
      no text     : Lyra(null text, seed s)      --OmniCodec--> audio --judge--> (the control)
      real        : the prompt's own clip codes  --OmniCodec--> audio --judge--> (the judge's ceiling)
    length control: END free from frame 0, requests of 5..40 s --> where pieces really end
    self-consistency (diagnostic only): Lyra's likelihood ranks the prompts for each piece
    independent evaluator (components/evaluation: musicnn, trained elsewhere on real recordings): how well it
      hears the real test clips, adherence with vs without text, KAD / FAD to the real test clips beside the
      floor (real train clips), the codec round trip and noise / shuffled controls

The judge (components/judge) learnt from real music of training pieces only; the prompts come from
`test` pieces, which selected nothing (not Lyra's checkpoint, not the judge's regularisation).
Outputs: `<n>_<clip>.wav` + `.json` (the `lyra generate` command that reproduces it) for the first
few prompts, `spectrograms.png`, `lengths.png`, `verdict.json`, `lineage.json`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from components.common.atomic import atomic_write_json
from components.common.audio import rms_dbfs, write_wav
from components.common.mel import log_mel_spectrogram
from components.common.reporting import stage_run
from components.evaluation.evaluator import Evaluator
from components.evaluation.real_sets import codec_round_trip, curated_clips
from components.evaluation.report import samples_evaluation
from components.judge.model import Judge
from components.judge.train import LABELS_FILE
from components.judge.verdict import head_verdict
from components.omnicodec import decoding as codec_io
from components.lyra.conditioning import caption_gap, caption_nll_matrix, retrieval_accuracy
from components.lyra.config import GenerateConfig
from components.lyra.generation import (GenerationError, generate_codes, load_model, model_identity, reproduce_command,
                                      sampling_params)
from components.lyra.length_control import length_summary, measure_lengths, plot_lengths
from components.lyra.plots import plot_spectrograms
from components.tokens.dataset import TokenClip, TokenDataset

STAGE = "lyra_samples"
SILENCE_DBFS = -60.0


@dataclasses.dataclass(frozen=True)
class Prompt:
    clip: TokenClip
    phrasing: int           # which of the clip's captions

    @property
    def caption(self) -> str:
        return self.clip.captions[self.phrasing]

    @property
    def embedding(self) -> np.ndarray:
        return self.clip.text_embeddings[self.phrasing]


def prompt_split(tokens: Path) -> tuple[str, list[TokenClip]]:
    """Prompts come from `test` pieces; a corpus without them falls back to `valid` (and says so)."""
    for split in ("test", "valid"):
        ds = TokenDataset(tokens, split=split)
        if len(ds):
            return split, list(ds)
    raise GenerationError(f"{tokens} has no held-out (test/valid) clips to take prompts from")


def choose_prompts(clips: list[TokenClip], classes: list[str], n: int) -> list[Prompt]:
    """n prompts spread round-robin over the clips' classes; a clip comes back with its next phrasing."""
    by_class: dict[str, list[TokenClip]] = {}
    for clip, label in zip(clips, classes):
        by_class.setdefault(label, []).append(clip)
    order = [clip for depth in range(max(len(v) for v in by_class.values()))
             for label in sorted(by_class) for clip in by_class[label][depth:depth + 1]]
    return [Prompt(order[j % len(order)], (j // len(order)) % len(order[j % len(order)].captions)) for j in range(n)]


def generate_set(model, prompts: list[Prompt], cfg: GenerateConfig, unconditional: bool, progress, desc: str):
    """Codes of every prompt, in batches; batch b uses seed cfg.seed + b with or without the text."""
    params = sampling_params(cfg)
    pieces, steps, seconds = [], 0, 0.0
    for b in progress(range(0, len(prompts), cfg.batch_size), desc=desc, unit="batch"):
        text = np.stack([p.embedding for p in prompts[b:b + cfg.batch_size]])
        out, dt = generate_codes(model, text, cfg.sample_seconds, params, cfg.seed + b, unconditional=unconditional)
        pieces.extend(out.codes[i, :, :int(out.lengths[i])].cpu() for i in range(out.codes.shape[0]))
        steps, seconds = steps + out.steps * out.codes.shape[0], seconds + dt
    return pieces, steps / seconds if seconds else None


def held_out_prompts(tokens: Path, judge, labels: pd.DataFrame, judge_dir: Path, n: int) -> tuple[str, int, list[Prompt]]:
    """(split, labelled clips, prompts): prompts spread over the judge's first head's classes."""
    split, clips = prompt_split(tokens)
    clips = [c for c in clips if c.clip_id in labels.index]
    if not clips:
        raise GenerationError(f"none of the {split} clips of {tokens} is labelled in {judge_dir}/{LABELS_FILE}")
    head = next(iter(judge.classes), None)          # a judge without heads (an untagged library): no spreading
    return split, len(clips), choose_prompts(clips, [str(labels.loc[c.clip_id, head]) if head else "" for c in clips], n)


def judge_verdicts(judge, labels: pd.DataFrame, prompts: list[Prompt], audio: dict[str, list], log) -> tuple[dict, dict]:
    """Per head: the judge's accuracy on real clips and on generations with and without the text (the same
    seeds), and what it answered for each prompt."""
    feats = {name: judge.features(a) for name, a in audio.items()}
    verdict, answers = {}, {}
    for head in judge.classes:
        code = {c: i for i, c in enumerate(judge.classes[head])}
        truth_names = [str(labels.loc[p.clip.clip_id, head]) for p in prompts]
        known = np.array([t in code for t in truth_names])        # a class the judge never learnt: left out
        truth = np.array([code.get(t, -1) for t in truth_names])
        preds = {name: judge.predict(head, f) for name, f in feats.items()}
        verdict[head] = head_verdict(truth[known], *(preds[s][known] for s in ("real", "text", "no_text")))
        verdict[head]["prompts_with_unknown_class"] = int((~known).sum())
        answers[head] = {name: [judge.classes[head][i] for i in p] for name, p in preds.items()}
        v = verdict[head]
        log.info("judge (%s): with text %.2f, without %.2f, real %.2f, chance %.2f over n=%d; share of real %.2f; "
                 "p(text > no text) = %.2g", head, v["accuracy_text"], v["accuracy_no_text"], v["accuracy_real"],
                 v["chance_majority"], v["n"], v["share_of_real"], v["p_text_vs_no_text"])
    return verdict, answers


def unmeasured_heads(judge, verdict: dict, gate_head: str | None, n_prompts: int) -> dict[str, str]:
    """{"judge_<head>": why} for the gate's head and every head no prompt had a learnt truth for."""
    out = {f"judge_{h}": f"none of the {n_prompts} prompts' clips has a {h} tag the judge learnt"
           for h, v in verdict.items() if v["n"] == 0}
    if gate_head and gate_head not in judge.classes:
        out[f"judge_{gate_head}"] = (f"the judge has no {gate_head} head: the corpus has too few {gate_head} tags "
                                     f"to train one")
    return out


def self_consistency(model, prompts: list[Prompt], with_text: list, texts: np.ndarray, cfg: GenerateConfig) -> dict:
    """The model scoring itself (a diagnostic, never evidence of conditioning): caption NLL matrices."""
    m = min(cfg.self_consistency_prompts, len(prompts))
    sub_texts = texts[:m]
    real_nll = caption_nll_matrix(model, [p.clip.codes for p in prompts[:m]], sub_texts,
                                  np.array([p.clip.seconds_start for p in prompts[:m]]),
                                  np.array([p.clip.seconds_total for p in prompts[:m]]))
    gen_nll = caption_nll_matrix(model, [g.numpy() for g in with_text[:m]], sub_texts, np.zeros(m),
                                 np.full(m, cfg.sample_seconds))
    return {"real": real_nll, "generated": gen_nll, "texts": sub_texts}


def write_examples(staged, prompts: list[Prompt], audio: dict[str, list], answers: dict, labels: pd.DataFrame,
                   loudness: list[float], codec, cfg: GenerateConfig, model_dir: Path, codec_dir: Path) -> None:
    """The first prompts' audio (with and without the text), what the judge heard, how to reproduce them."""
    heads, mels, titles = list(answers), [], []
    for i in range(min(cfg.n_audio_examples, len(prompts))):
        p, wav = prompts[i], audio["text"][i]
        name = f"{i:02d}_{p.clip.clip_id}"
        write_wav(staged.dir / f"{name}.wav", wav, codec.sample_rate)
        write_wav(staged.dir / f"{name}.no_text.wav", audio["no_text"][i], codec.sample_rate)
        seed = cfg.seed + (i // cfg.batch_size) * cfg.batch_size
        atomic_write_json(staged.dir / f"{name}.json", {
            "prompt": p.caption, "source_clip": p.clip.clip_id, "batch_seed": seed,
            "seconds_generated": len(wav) / codec.sample_rate,
            "judge": {h: {s: answers[h][s][i] for s in answers[h]} for h in heads},
            "truth": {h: str(labels.loc[p.clip.clip_id, h]) for h in heads},
            "rms_dbfs": loudness[i], "model": model_identity(model_dir), "codec": model_identity(codec_dir),
            "reproduce": reproduce_command(p.caption, cfg.model_copy(update={"seed": seed}), cfg.sample_seconds,
                                           os.fspath(model_dir), os.fspath(codec_dir), f"{name}.wav"),
            "reproduce_note": "generated in a batch of prompts: the command gives the same settings, not the same draw",
        })
        if len(wav):
            mels.append(log_mel_spectrogram(torch.from_numpy(wav), codec.sample_rate, n_fft=1024, n_mels=64).numpy())
            said = ", ".join(f"{answers[h]['text'][i]}" for h in heads)
            titles.append(f"{i:02d} [judge: {said}] {p.caption}")
    if mels:
        plot_spectrograms(staged.image("spectrograms", "spectrograms.png"), mels, titles,
                          [mel.shape[-1] * 256 / codec.sample_rate for mel in mels])


def instrument_of(labels: pd.DataFrame):
    """clip_id -> its instrument tag as the judge's labels hold it (None for a corpus without the column)."""
    if "instrument" not in labels.columns:
        return lambda clip_id: None
    return lambda clip_id: str(labels.loc[clip_id, "instrument"])


def independent_evaluation(evaluator: Evaluator, prompts: list[Prompt], split: str, tokens: Path, curated: Path,
                           labels: pd.DataFrame, audio: dict[str, list], codec, cfg: GenerateConfig, log) -> dict:
    """The held-out clips raw and through the codec, other (train) clips as the floor, the generations: all cropped
    to the generation length and read by the independent evaluator (components/evaluation/report.py)."""
    test = [c for c in TokenDataset(tokens, split=split) if c.clip_id in labels.index]
    test = list({c.clip_id: c for c in test}.values())
    train_ids = sorted(i for i in labels.index[labels["split"] == "train"])
    if min(len(test), len(train_ids), len(prompts)) < 2:
        return {"not_measurable": f"the independent evaluator's distances need 2 clips a set: {len(test)} {split} "
                                  f"clips, {len(train_ids)} train clips, {len(prompts)} prompts"}
    rng = np.random.default_rng(cfg.seed)
    train_ids = [train_ids[i] for i in sorted(rng.choice(len(train_ids), min(len(test), len(train_ids)), replace=False))]

    def raw(ids):
        return curated_clips(curated, ids, cfg.sample_seconds, codec.sample_rate)

    codec_test = codec_round_trip(test, codec, cfg.sample_seconds, cfg.batch_size)
    instrument = instrument_of(labels)
    where = {c.clip_id: j for j, c in enumerate(test)}
    started = time.perf_counter()
    hits_before, misses_before = evaluator.hits, evaluator.misses
    real_test = raw([c.clip_id for c in test])
    result = samples_evaluation(
        evaluator, sample_rate=codec.sample_rate, real_test=real_test,
        test_instruments=[instrument(c.clip_id) for c in test], real_train=raw(train_ids), codec_test=codec_test,
        text=audio["text"], no_text=audio["no_text"], prompt_test_index=[where[p.clip.clip_id] for p in prompts],
        prompt_instruments=[instrument(p.clip.clip_id) for p in prompts], seed=cfg.seed)
    result["clips_scored"] = evaluator.misses - misses_before
    result["clips_from_cache"] = evaluator.hits - hits_before
    result["note_drift"] = note_drift(real_test, codec_test, audio, codec.sample_rate, cfg.seed)
    result["seconds"] = time.perf_counter() - started
    a, t = result["adherence_text_vs_no_text"], result["kad_table"]
    log.info("independent evaluator: tagger hears %.2f of %d real test clips; adherence with text - without = %.3f "
             "(p = %.2g, n = %d); KAD floor %.2f, codec %.2f, with text %.2f, controls %s; %.0f s (%d from cache)",
             result["tagger_hears_real_test_overall"]["top1"], result["tagger_hears_real_test_overall"]["n"],
             a["difference"], a["p_first_better"], a["n"], t["floor_kad"], t["ceiling_kad"],
             next(r["kad"] for r in t["rows"] if r["name"] == "with text"),
             [round(r["kad"], 2) for r in t["rows"] if r["kind"] == "control"], result["seconds"],
             result["clips_from_cache"])
    drift = result["note_drift"]["with text"]["density"]
    if "difference" in drift:
        log.info("basic-pitch: %.2f notes/s in real test clips, %.2f with text (drift %+.2f %s)", drift["real"],
                 drift["generated"], drift["difference"], [round(x, 2) for x in drift["difference_interval95"]])
    return result


def valid_independent(evaluator: Evaluator, model, tokens: Path, curated: Path, labels: pd.DataFrame, codec,
                      cfg: GenerateConfig, progress) -> dict:
    """What the registry's no-regression rule compares (selection happens on `valid`, never on `test`): KAD of
    generations from valid captions to the real valid clips, and their adherence, by the independent evaluator."""
    from components.evaluation import adherence
    from components.evaluation.distances import kad, kad_interval

    clips = [c for c in TokenDataset(tokens, split="valid") if c.clip_id in labels.index]
    if len({c.clip_id for c in clips}) < 2 or cfg.n_prompts < 2:
        return {}
    instrument = instrument_of(labels)
    prompts = choose_prompts(clips, [instrument(c.clip_id) or "" for c in clips], cfg.n_prompts)
    generated, _ = generate_set(model, prompts, cfg, False, progress, "generating from valid captions")
    unique = list({c.clip_id: c for c in clips})
    ref = evaluator.score(curated_clips(curated, unique, cfg.sample_seconds, codec.sample_rate), codec.sample_rate)
    gen = evaluator.score(codec_io.decode_in_batches(codec, generated, cfg.batch_size), codec.sample_rate)
    lo, hi = kad_interval(gen.embeddings, ref.embeddings, n_resamples=200, seed=cfg.seed)
    adh = adherence.summary(gen.tags, [instrument(p.clip.clip_id) for p in prompts], cfg.seed)
    return {"independent_valid_kad_with_text": kad(gen.embeddings, ref.embeddings),
            "independent_valid_kad_with_text_interval95": [lo, hi], "independent_valid_n": len(prompts),
            "independent_valid_n_real": len(ref), "independent_valid_adherence_with_text": adh["adherence"],
            "independent_valid_adherence_interval95": adh["adherence_interval95"],
            "independent_valid_adherence_n": adh["n"]}


def note_drift(real_test: list, codec_test: list, audio: dict[str, list], sample_rate: int, seed: int) -> dict:
    """basic-pitch's note statistics of each set against the real test clips' (components/evaluation/notes.py)."""
    from components.evaluation.notes import NoteReader, drift

    reader = NoteReader()
    real = reader.statistics(real_test, sample_rate)
    return {"transcriber": reader.name,
            **{name: drift(real, reader.statistics(clips, sample_rate), seed)
               for name, clips in (("codec round trip", codec_test), ("with text", audio["text"]),
                                   ("without text", audio["no_text"]))}}


def independent_metrics(result: dict) -> dict:
    """The flat figures of the independent evaluation the registry compares across versions."""
    rows = {r["name"]: r for r in result["kad_table"]["rows"]}
    adh, pair = result["adherence"], result["adherence_text_vs_no_text"]
    return {
        "independent_tagger_accuracy_real_test": result["tagger_hears_real_test_overall"]["top1"],
        "independent_tagger_n_real_test": result["tagger_hears_real_test_overall"]["n"],
        "independent_kad_with_text": rows["with text"]["kad"],
        "independent_kad_with_text_interval95": rows["with text"]["kad_interval"],
        "independent_kad_without_text": rows["without text"]["kad"],
        "independent_kad_floor": result["kad_table"]["floor_kad"],
        "independent_kad_codec_ceiling": result["kad_table"]["ceiling_kad"],
        "independent_kad_control": result["kad_table"]["control_kad"],
        "independent_controls_rejected": result["kad_table"]["controls_rejected"],
        "independent_fad_with_text": rows["with text"]["fad"],
        "independent_tag_kl_with_text": result["tag_kl_to_prompt_clip"]["with text"],
        "independent_adherence_with_text": adh["with text"]["adherence"],
        "independent_adherence_without_text": adh["without text"]["adherence"],
        "independent_adherence_shuffled_prompts": adh["with text, shuffled prompts"]["adherence"],
        "independent_adherence_n": pair["n"],
        "independent_adherence_difference": pair["difference"],
        "independent_adherence_difference_interval95": pair["difference_interval95"],
        "independent_adherence_p_text_better": pair["p_first_better"],
        "independent_vendi_with_text": result["vendi"]["with text"],
        **{f"independent_notes_{stat}_{key}": result["note_drift"]["with text"][stat].get(field)
           for stat in ("density", "range", "polyphony") for key, field in (("real", "real"), ("with_text", "generated"))},
        **{f"independent_notes_{stat}_drift_interval95": result["note_drift"]["with text"][stat].get("difference_interval95")
           for stat in ("density", "range", "polyphony")},
        "independent_seconds": result["seconds"],
    }


def run_sample_stage(cfg: GenerateConfig, model_dir, codec_dir, tokens, judge_dir, out, metrics_path=None,
                     curated=None) -> dict:
    model_dir, codec_dir, tokens, judge_dir, out = map(Path, (model_dir, codec_dir, tokens, judge_dir, out))
    with stage_run(STAGE) as run:
        log, started = run.log, time.perf_counter()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        model = load_model(model_dir, precision=cfg.precision)
        codec = codec_io.load_codec(codec_dir, device=next(model.parameters()).device)
        codec_io.check_compatible(codec, model.config)
        judge = Judge.load(judge_dir)
        labels = pd.read_parquet(judge_dir / LABELS_FILE).set_index("clip_id")
        split, n_clips, prompts = held_out_prompts(tokens, judge, labels, judge_dir, cfg.n_prompts)
        log.info("%d prompts from %d %s clips; judge heads %s", len(prompts), n_clips, split, list(judge.classes))

        # --- three sets of music: the prompts' real clips, generations with and without the text
        real = codec_round_trip([p.clip for p in prompts], codec, cfg.sample_seconds, cfg.batch_size)
        with_text, frames_per_s = generate_set(model, prompts, cfg, False, run.progress, "generating with text")
        no_text, _ = generate_set(model, prompts, cfg, True, run.progress, "generating without text")
        audio = {"real": real, "text": codec_io.decode_in_batches(codec, with_text, cfg.batch_size),
                 "no_text": codec_io.decode_in_batches(codec, no_text, cfg.batch_size)}
        verdict, answers = judge_verdicts(judge, labels, prompts, audio, log)
        unmeasured = unmeasured_heads(judge, verdict, cfg.gate_head, len(prompts))
        verdict = {h: v for h, v in verdict.items() if f"judge_{h}" not in unmeasured}
        independent, valid = None, {}
        if curated is not None:
            evaluator = Evaluator(threads=cfg.threads)
            independent = independent_evaluation(evaluator, prompts, split, tokens, Path(curated), labels, audio, codec,
                                                 cfg, log)
            valid = valid_independent(evaluator, model, tokens, Path(curated), labels, codec, cfg, run.progress)
        if independent and "not_measurable" in independent:
            unmeasured["independent"] = independent.pop("not_measurable")
            independent = None

        texts = np.stack([p.embedding for p in prompts])      # length control, unforced
        length_rows = measure_lengths(model, texts, cfg.length_requests, cfg.length_seeds, sampling_params(cfg), cfg.seed)
        lengths = length_summary(length_rows)
        nll = self_consistency(model, prompts, with_text, texts, cfg)

        loudness = [rms_dbfs(a) for a in audio["text"]]
        metrics = {
            "prompt_split": split, "n_prompts": len(prompts), "sample_seconds": cfg.sample_seconds,
            **{f"judge_{h}_{k}": v for h, hv in verdict.items() for k, v in hv.items() if not isinstance(v, list)},
            "silent_fraction": float(np.mean([level < SILENCE_DBFS for level in loudness])),
            "rms_dbfs_mean": float(np.mean([level for level in loudness if math.isfinite(level)] or [-math.inf])),
            "length_control": lengths, "generation_frames_per_second": frames_per_s,
            "self_consistency_retrieval_real": retrieval_accuracy(nll["real"], nll["texts"])[0],
            "self_consistency_retrieval_generated": retrieval_accuracy(nll["generated"], nll["texts"])[0],
            "self_consistency_chance": retrieval_accuracy(nll["real"], nll["texts"])[1],
            "self_consistency_gap_real_nats": caption_gap(nll["real"]),
            **(independent_metrics(independent) if independent else {}), **valid,
            "seconds": time.perf_counter() - started,
            **({"not_measurable": unmeasured} if unmeasured else {}),
        }
        inputs = {"model": model_dir, "codec": codec_dir, "tokens": tokens, "judge": judge_dir,
                  **({"curated": Path(curated)} if curated is not None else {})}
        with run.output(out, inputs=inputs,
                        params=cfg, lineage={"metrics": metrics}) as staged:
            write_examples(staged, prompts, audio, answers, labels, loudness, codec, cfg, model_dir, codec_dir)
            plot_lengths(staged.image("lengths", "lengths.png"), length_rows)
            atomic_write_json(staged.dir / "verdict.json", {
                "prompts": [{"caption": p.caption, "clip": p.clip.clip_id} for p in prompts],
                "judge_answers": answers, "verdict": verdict, "lengths": length_rows,
                "self_consistency_nll_real": nll["real"].round(4).tolist(),
                "self_consistency_nll_generated": nll["generated"].round(4).tolist(), "metrics": metrics,
            })
            if independent:
                atomic_write_json(staged.dir / "independent.json", independent)
        log.info("lengths (END free): %s", ", ".join(f"{k}: median {v['median_generated_s']:.1f} s" for k, v in lengths.items()))
        run.add_path("samples", out)
        run.finish(metrics, metrics_path)
    return metrics
