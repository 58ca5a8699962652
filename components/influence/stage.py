"""`lyra influence train`: fine-tune Lyra on a reference song and evaluate it on held-out pieces.

    post-trained Lyra + ReferenceConditioner + LoRA --pairs of one recording (fine-tune pool)--> Influence
    evaluator (contrastive, evaluator pool: disjoint pieces) --selected on valid-->
    test references: influence index, per attribute, two-choice, copy detectors + spliced controls,
                     1..n_q codebook sweep;  ood references: influence index, two-choice

The output folder (written atomically): the merged model (config.json + model.safetensors, loads with
`from_pretrained` and `lyra generate --reference`), adapter/ (the PEFT LoRA adapter + the conditioner),
influence.json, sweep.png, training.png, examples/*.wav, lineage.json.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import torch

from components.common.atomic import atomic_write_json
from components.common.metrics import pick
from components.common.reporting import stage_run
from components.common.resume import ResumeFolder, checkpoint_folder
from components.influence.config import InfluenceConfig
from components.influence.train import InfluenceError, run_fingerprint

STAGE = "lyra_influence"


def cpu_seconds() -> float:
    """CPU time of this process so far (user + system): the stage's cost on a shared machine, where wall
    time depends on what else runs."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def resolve_model(model: str | os.PathLike, fallback: str | os.PathLike | None) -> Path:
    """The post-trained Lyra where it exists, else the pretrained one."""
    model = Path(model)
    if (model / "config.json").is_file():
        return model
    if fallback is not None and (Path(fallback) / "config.json").is_file():
        return Path(fallback)
    raise InfluenceError(f"{model} holds no Lyra model (no config.json)"
                         + (f", nor does {fallback}" if fallback else "") + "; run `lyra lm train` / `lyra rlaif train`")


def truths_of(curated: Path, recs) -> list[dict]:
    """Each recording's metadata attributes (the curated manifest: tempo, key, mode) + its instrument."""
    import pandas as pd

    manifest = pd.read_parquet(curated / "manifest.parquet").set_index("clip_id")
    out = []
    for r in recs:
        row = manifest.loc[r.clip_ids[0]] if r.clip_ids[0] in manifest.index else {}
        get = (lambda k: None if k not in row or pd.isna(row[k]) else row[k]) if len(row) else (lambda k: None)
        out.append({"tempo_bpm": get("tempo_bpm"), "key": get("key"), "mode": get("mode"), "instrument": r.instrument})
    return out


# the headline figures of a test evaluation (its flat metrics), by path in
# {"test": the evaluation, "main": its setting at cfg.codebooks, "history": fine-tuning, "mel": the mel detector}
HEADLINE = {
    "n_references": "test.n_references", "n_pieces": "test.n_pieces", "bits_per_second": "main.bits_per_second",
    "influence_index": "main.influence.index", "influence_ci95": "main.influence.ci95",
    "s_gen": "main.influence.s_gen", "s_pos": "main.influence.s_pos", "s_neg": "main.influence.s_neg",
    "baseline_influence_index": "test.baseline_no_reference.index",
    "baseline_influence_ci95": "test.baseline_no_reference.ci95",
    "influence_gain_over_no_reference": "main.gain_over_no_reference.gain",
    "influence_gain_over_no_reference_ci95": "main.gain_over_no_reference.ci95",
    "two_choice": "main.two_choice.accuracy", "two_choice_ci95": "main.two_choice.ci95",
    "two_choice_pairs": "main.two_choice.n_pairs",
    "copy_run_p99_seconds": "main.copying.generated.run_seconds_p99",
    "copy_run_max_seconds": "main.copying.generated.run_seconds_max",
    "flagged_generated": "main.copying.generated.flagged", "flagged_generated_ci95": "main.copying.generated.flagged_ci95",
    "flagged_spliced_reference": "main.copying.spliced_reference.flagged",
    "flagged_spliced_training": "main.copying.spliced_training.flagged",
    "mel_threshold": "mel.threshold",
    "reference_gain_before": "history.gain_before.gain", "reference_gain_after": "history.gain_after.gain",
    "reference_gain_early_after": "history.gain_after.gain_early",
    "reference_gain_after_ci95": "history.gain_after.gain_ci95", "reference_gain_windows": "history.gain_after.n_windows",
}
TWO_CHOICE_INSTRUMENT = {"two_choice_instrument": "main.two_choice_instrument.accuracy",
                         "two_choice_instrument_ci95": "main.two_choice_instrument.ci95",
                         "two_choice_instrument_pairs": "main.two_choice_instrument.n_pairs"}
PER_SETTING = {"bits_per_second": "bits_per_second", "influence_index": "influence.index",
               "two_choice": "two_choice.accuracy", "copy_run_p99_seconds": "copying.generated.run_seconds_p99",
               "flagged": "copying.generated.flagged"}
OOD = {"ood_n_references": "ood.n_references", "ood_influence_index": "main.influence.index",
       "ood_influence_ci95": "main.influence.ci95", "ood_two_choice": "main.two_choice.accuracy",
       "ood_two_choice_ci95": "main.two_choice.ci95"}


def targets_and_gate(m: dict, cfg: InfluenceConfig) -> dict:
    """The issue's targets (met or not) and the gate's thresholds, beside the figures they judge."""
    met = {"influence": m["influence_index"] >= cfg.target_influence,
           "two_choice": m["two_choice"] >= cfg.target_two_choice,
           "copy_run_p99_seconds": m["copy_run_p99_seconds"] < cfg.target_copy_run_p99_seconds,
           "flagged_generated": m["flagged_generated"] <= cfg.target_max_flagged,
           "flagged_spliced": m["flagged_spliced"] >= cfg.target_min_spliced_flagged}
    target = {"influence": cfg.target_influence, "two_choice": cfg.target_two_choice,
              "copy_run_p99_seconds": cfg.target_copy_run_p99_seconds, "flagged_generated": cfg.target_max_flagged,
              "flagged_spliced": cfg.target_min_spliced_flagged}
    return {"targets": {k: {"target": target[k], "met": bool(ok)} for k, ok in met.items()},
            "gate": {"min_influence": cfg.gate_min_influence, "min_two_choice": cfg.gate_min_two_choice,
                     "max_flagged": cfg.gate_max_flagged, "min_spliced_flagged": cfg.gate_min_spliced_flagged}}


def independent_metrics(independent: dict | None, reference_split: str) -> dict:
    """independent_two_choice (+ _ci95, _pairs, _n_references, _baseline) on the reference split; ood_ the same."""
    out = {}
    for name, row in (independent or {}).items():
        prefix = "ood_independent" if name == "ood" else "independent"
        out.update({f"{prefix}_two_choice": row["two_choice"]["accuracy"], f"{prefix}_two_choice_ci95": row["two_choice"]["ci95"],
                    f"{prefix}_two_choice_pairs": row["two_choice"]["n_pairs"],
                    f"{prefix}_two_choice_n_references": row["n_references"],
                    f"{prefix}_two_choice_baseline": row["baseline_two_choice"]["accuracy"],
                    f"{prefix}_two_choice_baseline_ci95": row["baseline_two_choice"]["ci95"]})
    return out


def flat_metrics(cfg: InfluenceConfig, test: dict, ood: dict | None, codec_bits_per_second: float, history: dict,
                 evaluator_info: dict, mel: dict) -> dict:
    """The stage's metrics file: HEADLINE from the test evaluation, per attribute and per codebook setting,
    out of distribution, fine-tuning, losses, the evaluator, targets and the gate's thresholds."""
    main = test["settings"][str(cfg.codebooks)]
    tree = {"test": test, "main": main, "history": history, "mel": mel}
    m = {**pick(tree, HEADLINE), **(pick(tree, TWO_CHOICE_INSTRUMENT) if main.get("two_choice_instrument") else {}),
         "codec_bits_per_second": codec_bits_per_second}
    if test.get("baseline_two_choice_instrument"):
        m["baseline_two_choice_instrument"] = test["baseline_two_choice_instrument"]["accuracy"]
    m["loss_first"] = float(np.mean(history["loss"][:10])) if history["loss"] else None
    m["loss_last"] = float(np.mean(history["loss"][-10:])) if history["loss"] else None
    m.update(evaluator_info)
    m["bits_share_of_codec"] = m["bits_per_second"] / m["codec_bits_per_second"]
    m["flagged_spliced"] = min(m["flagged_spliced_reference"], m["flagged_spliced_training"])
    for name, row in main.get("attributes", {}).items():
        if "not_measurable" in row:
            m.setdefault("not_measurable", {})[f"influence_{name}"] = row["not_measurable"]
        else:
            m.update({f"influence_{name}": row["index"], f"influence_{name}_ci95": row["ci95"]})
    for q, row in test["settings"].items():
        m.update({f"sweep_{q}_{name}": value for name, value in pick(row, PER_SETTING).items()})
    if ood is not None:
        m.update(pick({"ood": ood, "main": ood["settings"][str(cfg.codebooks)]}, OOD))
    return {**m, **targets_and_gate(m, cfg)}


@dataclasses.dataclass
class Recordings:
    """The token shards' recordings as Influence uses them: pieces for fine-tuning, for the evaluator, held out."""

    fine_pool: list
    eval_pool: list
    valid: list
    test: list


def load_start(cfg: InfluenceConfig, model_dir: Path, codec_dir: Path, tokens: Path):
    """The pretrained Lyra with a reference conditioner attached, the codec, and the recordings."""
    from components.influence.pairs import recordings, split_by_piece, usable
    from components.influence.train import attach_reference
    from components.lyra.model import LyraForMusicGeneration
    from components.omnicodec.decoding import check_compatible, load_codec

    torch.manual_seed(cfg.seed)
    model = LyraForMusicGeneration.from_pretrained(model_dir, dtype=torch.float32)
    if model.config.reference_tokens:
        raise InfluenceError(f"{model_dir} already has a reference conditioner; start from a text-to-music Lyra")
    codec = load_codec(codec_dir)
    check_compatible(codec, model.config)
    conditioner = attach_reference(model, cfg, codec)
    R, W = model.config.reference_frames, model.config.window_frames
    fine_pool, eval_pool = split_by_piece(recordings(tokens, "train"), cfg.fine_tune_share, cfg.seed)
    recs = Recordings(usable(fine_pool, R, W), eval_pool, recordings(tokens, "valid"), recordings(tokens, "test"))
    if not recs.fine_pool:
        raise InfluenceError(f"{tokens}: no training recording is long enough for a {R}-frame reference and a "
                             f"{W}-frame target")
    return model, codec, conditioner, recs


def train_evaluator_ensemble(cfg: InfluenceConfig, codec, recs: Recordings, frame_rate: float, log):
    """The influence evaluator: contrastive encoders on disjoint training pieces, selected on valid, reported on test."""
    from components.influence.evaluator import EvaluatorEnsemble, retrieval_accuracy, train_evaluator
    from components.omnicodec.decoding import decode_in_batches

    t0 = time.perf_counter()
    ev_recs = [r for r in recs.eval_pool if r.codes.shape[1] >= 2 * int(cfg.evaluator_crop_seconds * frame_rate)]
    ev_recs = [ev_recs[i] for i in sorted(np.random.default_rng(cfg.seed).permutation(len(ev_recs))[:cfg.evaluator_recordings])]
    cap = 500                                     # first 10 s of each recording
    train_audio = decode_in_batches(codec, [r.codes[:, :cap] for r in ev_recs])
    valid_audio = decode_in_batches(codec, [r.codes[:, :cap] for r in recs.valid])
    test_audio = decode_in_batches(codec, [r.codes[:, :cap] for r in recs.test])
    evaluator = EvaluatorEnsemble([
        train_evaluator(train_audio, valid_audio, int(codec.sample_rate), steps=cfg.evaluator_steps,
                        crop_seconds=cfg.evaluator_crop_seconds, dim=cfg.evaluator_dim, seed=cfg.seed + k,
                        log=log if k == 0 else None)
        for k in range(cfg.evaluator_members)])
    info = {"evaluator_valid_retrieval": evaluator.history["selected_valid_retrieval"],
            "evaluator_test_retrieval": retrieval_accuracy(evaluator, test_audio, cfg.seed),
            "evaluator_chance": 1 / max(1, len(test_audio)), "evaluator_recordings": len(ev_recs),
            "evaluator_members": len(evaluator.members),
            "evaluator_members_valid_retrieval": evaluator.history["members_valid_retrieval"],
            "evaluator_seconds": time.perf_counter() - t0}
    log.info("CPU so far: %.0f s (fine-tune and evaluator)", cpu_seconds())
    log.info("evaluator: valid retrieval %.2f, test retrieval %.2f (chance %.2f)", info["evaluator_valid_retrieval"],
             info["evaluator_test_retrieval"], info["evaluator_chance"])
    return evaluator, info


def reference_set(cfg: InfluenceConfig, recs: Recordings, R: int, G: int, tokens: Path, frame_rate: float):
    """The references to evaluate on (valid while choosing settings, test to report) and their split's name."""
    from components.influence import evaluate as ev

    if cfg.eval_split == "valid":   # choosing settings: valid references only (test stays unseen)
        refs, split = ev.reference_set(recs.valid, cfg.eval_references, R, G, cfg.seed), "valid"
    else:
        refs, split = ev.reference_set(recs.test, cfg.eval_references, R, G, cfg.seed), "test"
        if refs is None:        # a tiny corpus with one test piece: valid joins it (and says so)
            refs, split = ev.reference_set(recs.valid + recs.test, cfg.eval_references, R, G, cfg.seed), "valid+test"
    if refs is None:
        raise InfluenceError(f"{tokens}: the {cfg.eval_split} split needs recordings of at least 2 pieces of "
                             f"{(R + G) / frame_rate:.1f} s for the evaluation")
    return refs, split


def copy_context(cfg: InfluenceConfig, codec, refs, recs: Recordings, tokens: Path, G: int, frame_rate: float) -> tuple:
    """The copy detectors' inputs: the mel detector's null threshold (different valid pieces; the evaluator's
    pool where valid has < 2 pieces) and every training recording's code n-grams. (context, mel null)"""
    from components.influence import evaluate as ev
    from components.influence.copying import ngram_hashes
    from components.influence.pairs import recordings
    from components.omnicodec.decoding import decode_in_batches

    null_pool = recs.valid if len({r.piece_id for r in recs.valid}) >= 2 else recs.eval_pool
    mel = ev.mel_null_threshold(null_pool, codec, G, cfg.mel_null_pairs, cfg.seed)
    train_all = recordings(tokens, "train")
    ngram = int(round(cfg.ngram_seconds * frame_rate))
    table = set().union(*(ngram_hashes(r.codes[0], ngram) for r in train_all))
    return {"song_audio": decode_in_batches(codec, [r.codes for r in refs.recs]), "ngram": ngram,
            "max_run_frames": int(round(cfg.max_copy_run_seconds * frame_rate)),
            "mel_threshold": mel["threshold"], "share": cfg.splice_share,
            "train_codes": [r.codes for r in train_all], "train_table": table}, mel


def evaluate_influence(cfg: InfluenceConfig, model, codec, evaluator, recs: Recordings, tokens: Path, curated: Path,
                       judge_dir, log) -> dict:
    """Test references (every codebook setting, copy detectors, attributes) and out-of-distribution ones."""
    from components.influence import evaluate as ev
    from components.influence.pairs import recordings
    from components.judge.model import Judge
    from components.lyra.sampling import SamplingParams

    t0, mc = time.perf_counter(), model.config
    R, G = mc.reference_frames, int(round(cfg.seconds * mc.frame_rate))
    params = SamplingParams(temperature=cfg.temperature, top_k=cfg.top_k, top_p=0.0, cfg=cfg.cfg_text,
                            cfg_reference=cfg.cfg_reference, allow_end=False, decode_weights="model")
    judge = Judge.load(judge_dir) if judge_dir and Path(judge_dir).is_dir() else None
    refs, reference_split = reference_set(cfg, recs, R, G, tokens, mc.frame_rate)
    log.info("references: %d recordings of %d %s pieces", len(refs.recs), len({r.piece_id for r in refs.recs}),
             reference_split)
    copy_ctx, mel = copy_context(cfg, codec, refs, recs, tokens, G, mc.frame_rate)
    test = ev.evaluate_references(model, codec, evaluator, refs, seconds=cfg.seconds, params=params,
                                  settings=list(range(1, cfg.codebooks + 1)), seed=cfg.seed, n_boot=cfg.bootstrap,
                                  judge=judge, truths=truths_of(curated, refs.recs), copy_ctx=copy_ctx, log=log)
    ood = None
    ood_refs = ev.reference_set(recordings(tokens, "ood"), cfg.ood_references, R, G, cfg.seed)
    if ood_refs is not None and cfg.ood_references >= 2 and cfg.eval_split == "test":   # reported results only
        ood = ev.evaluate_references(model, codec, evaluator, ood_refs, seconds=cfg.seconds, params=params,
                                     settings=[cfg.codebooks], seed=cfg.seed, n_boot=cfg.bootstrap, log=log)
    independent = None
    if cfg.independent_references >= 2:
        from components.evaluation.evaluator import Evaluator

        scorer = Evaluator()
        pool = recs.valid if cfg.eval_split == "valid" else recs.test
        sets = {reference_split: ev.reference_set(pool, cfg.independent_references, R, G, cfg.seed)}
        if cfg.eval_split == "test":    # every recording from outside the corpus too (reported results only)
            sets["ood"] = ev.reference_set(recordings(tokens, "ood"), cfg.independent_references, R, G, cfg.seed)
        independent = {name: ev.independent_two_choice(model, codec, refs_, scorer, seconds=cfg.seconds, params=params,
                                                       n_quantizers=cfg.codebooks, seed=cfg.seed, n_boot=cfg.bootstrap)
                       for name, refs_ in sets.items() if refs_ is not None}
        for name, row in independent.items():
            log.info("independent evaluator (musicnn), %s: two-choice %.2f %s over %d references of %d pieces "
                     "(without the reference, same seeds: %.2f)", name, row["two_choice"]["accuracy"],
                     [round(x, 2) for x in row["two_choice"]["ci95"]], row["n_references"], row["n_pieces"],
                     row["baseline_two_choice"]["accuracy"])
    log.info("CPU so far: %.0f s (evaluation done)", cpu_seconds())
    return {"test": test, "ood": ood, "mel": mel, "reference_split": reference_split, "independent": independent,
            "eval_seconds": time.perf_counter() - t0}


def write_influence(staged, model, adapter_dir: Path, codec, result: dict, metrics: dict, history: dict, evaluator,
                    cfg: InfluenceConfig) -> None:
    """The merged model, the adapter and conditioner, examples to listen to, the report and its plots."""
    import shutil

    from safetensors.torch import save_file

    from components.common.audio import write_wav
    from components.influence.plots import plot_sweep, plot_training

    test, ood = result["test"], result["ood"]
    examples = test.pop("examples")
    if ood is not None:
        ood.pop("examples")
    model.save_pretrained(staged.dir)
    shutil.copytree(adapter_dir, staged.dir / "adapter")
    save_file({k: v.contiguous() for k, v in model.condition.reference.state_dict().items()},
              staged.dir / "adapter" / "reference_conditioner.safetensors")
    (staged.dir / "examples").mkdir()
    for i, (ref, gen) in enumerate(zip(examples["excerpt"], examples["generation"])):
        write_wav(staged.dir / "examples" / f"reference_{i}.wav", ref, int(codec.sample_rate))
        write_wav(staged.dir / "examples" / f"generation_{i}.wav", gen, int(codec.sample_rate))
    atomic_write_json(staged.dir / "influence.json", {"metrics": metrics, "test": test, "ood": ood,
                                                      "mel_detector": result["mel"], "history": history,
                                                      "independent_two_choice": result["independent"],
                                                      "evaluator_history": evaluator.history,
                                                      "config": cfg.model_dump(mode="json")})
    plot_sweep(staged.image("sweep", "sweep.png"), test["settings"],
               {"influence": cfg.target_influence, "two_choice": cfg.target_two_choice,
                "run": cfg.target_copy_run_p99_seconds}, baseline=test["baseline_no_reference"]["index"])
    plot_training(staged.image("training", "training.png"), history, evaluator.history)


def run_influence(cfg: InfluenceConfig, model_dir, codec_dir, tokens, curated, judge_dir, out, metrics_path=None,
                  fallback_model=None, stop_after: int | None = None) -> dict:
    import shutil

    from components.influence.pairs import usable
    from components.influence.train import fine_tune

    started = time.perf_counter()
    model_dir, codec_dir, tokens, curated, out = map(Path, (resolve_model(model_dir, fallback_model), codec_dir, tokens,
                                                             curated, out))
    with stage_run(STAGE) as run:
        log = run.log
        model, codec, conditioner, recs = load_start(cfg, model_dir, codec_dir, tokens)
        R, W = model.config.reference_frames, model.config.window_frames
        log.info("Influence from %s: %d fine-tune recordings (%d pieces), %d evaluator recordings (disjoint pieces); "
                 "bottleneck %d tokens x %d codebooks of %d = %.0f bit/s (codec %.0f bit/s)", model_dir,
                 len(recs.fine_pool), len({r.piece_id for r in recs.fine_pool}), len(recs.eval_pool),
                 conditioner.n_tokens, cfg.codebooks, cfg.codebook_size, conditioner.bits_per_second(),
                 codec.bitrate(None))
        checkpoints = ResumeFolder(checkpoint_folder(out), run_fingerprint(cfg, model_dir, codec_dir, tokens), log)
        t0 = time.perf_counter()
        peft_model, history = fine_tune(model, recs.fine_pool, usable(recs.valid, R, W), cfg, checkpoints, log,
                                        stop_after)
        if stop_after is not None and stop_after < cfg.steps:
            return {"stopped_after": stop_after}
        train_seconds = time.perf_counter() - t0
        log.info("reference gain on valid pairs: %.3f -> %.3f nats/code (first %d steps: %.3f)",
                 history["gain_before"]["gain"], history["gain_after"]["gain"], history["gain_after"]["early_steps"],
                 history["gain_after"]["gain_early"])
        adapter_dir = out.parent / f".{out.name}.adapter"
        peft_model.save_pretrained(adapter_dir)
        model = peft_model.merge_and_unload().eval()

        evaluator, evaluator_info = train_evaluator_ensemble(cfg, codec, recs, model.config.frame_rate, log)
        result = evaluate_influence(cfg, model, codec, evaluator, recs, tokens, curated, judge_dir, log)
        metrics = {**flat_metrics(cfg, result["test"], result["ood"], float(codec.bitrate(None)), history,
                                  evaluator_info, result["mel"]),
                   **independent_metrics(result["independent"], result["reference_split"]),
                   "eval_split": cfg.eval_split, "reference_split": result["reference_split"],
                   "train_seconds": train_seconds, "eval_seconds": result["eval_seconds"], "cpu_seconds": cpu_seconds(),
                   "stage_seconds": time.perf_counter() - started, "model": os.fspath(model_dir)}
        with run.output(out, inputs={"model": model_dir, "codec": codec_dir, "tokens": tokens,
                                     "curated": curated / "manifest.parquet"}, params=cfg,
                        lineage={"metrics": {k: v for k, v in metrics.items() if not isinstance(v, dict)}}) as staged:
            write_influence(staged, model, adapter_dir, codec, result, metrics, history, evaluator, cfg)
        shutil.rmtree(adapter_dir, ignore_errors=True)
        checkpoints.remove()
        metrics["stage_seconds"], metrics["cpu_seconds"] = time.perf_counter() - started, cpu_seconds()
        log.info("Influence: I = %.2f %s (target %.2f), two-choice %.2f (target %.2f), p99 shared run %.2f s, "
                 "flagged %.2f, spliced flagged %.2f; %.0f s (%.0f CPU s)", metrics["influence_index"],
                 [round(x, 2) for x in metrics["influence_ci95"]], cfg.target_influence, metrics["two_choice"],
                 cfg.target_two_choice, metrics["copy_run_p99_seconds"], metrics["flagged_generated"],
                 metrics["flagged_spliced"], metrics["stage_seconds"], metrics["cpu_seconds"])
        run.add_path("model", out)
        run.finish(metrics, metrics_path)
    return metrics


def main(args) -> int:
    from components.config import config_from_args

    cfg = config_from_args("influence", InfluenceConfig, args)
    run_influence(cfg, args.model, args.codec, args.tokens, args.curated, args.judge, args.out, args.metrics,
                  fallback_model=args.fallback_model)
    return 0
