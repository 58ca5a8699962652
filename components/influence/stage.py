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

import os
import time
from pathlib import Path

import numpy as np
import torch

from components.common.atomic import atomic_dir, atomic_write_json
from components.common.lineage import write_lineage
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


def flat_metrics(cfg: InfluenceConfig, test: dict, ood: dict | None, codec, history: dict, evaluator_info: dict,
                 mel: dict) -> dict:
    main = test["settings"][str(cfg.codebooks)]
    cop = main["copying"]
    m = {
        "n_references": test["n_references"], "n_pieces": test["n_pieces"],
        "bits_per_second": main["bits_per_second"], "codec_bits_per_second": float(codec.bitrate(None)),
        "influence_index": main["influence"]["index"], "influence_ci95": main["influence"]["ci95"],
        "s_gen": main["influence"]["s_gen"], "s_pos": main["influence"]["s_pos"], "s_neg": main["influence"]["s_neg"],
        "baseline_influence_index": test["baseline_no_reference"]["index"],
        "influence_gain_over_no_reference": main["gain_over_no_reference"]["gain"],
        "influence_gain_over_no_reference_ci95": main["gain_over_no_reference"]["ci95"],
        "baseline_influence_ci95": test["baseline_no_reference"]["ci95"],
        "two_choice": main["two_choice"]["accuracy"], "two_choice_ci95": main["two_choice"]["ci95"],
        "two_choice_pairs": main["two_choice"]["n_pairs"],
        **({"two_choice_instrument": main["two_choice_instrument"]["accuracy"],
            "two_choice_instrument_ci95": main["two_choice_instrument"]["ci95"],
            "two_choice_instrument_pairs": main["two_choice_instrument"]["n_pairs"]}
           if main.get("two_choice_instrument") else {}),
        **({"baseline_two_choice_instrument": test["baseline_two_choice_instrument"]["accuracy"]}
           if test.get("baseline_two_choice_instrument") else {}),
        "copy_run_p99_seconds": cop["generated"]["run_seconds_p99"],
        "copy_run_max_seconds": cop["generated"]["run_seconds_max"],
        "flagged_generated": cop["generated"]["flagged"], "flagged_generated_ci95": cop["generated"]["flagged_ci95"],
        "flagged_spliced_reference": cop["spliced_reference"]["flagged"],
        "flagged_spliced_training": cop["spliced_training"]["flagged"],
        "mel_threshold": mel["threshold"],
        "reference_gain_before": history["gain_before"]["gain"], "reference_gain_after": history["gain_after"]["gain"],
        "reference_gain_early_after": history["gain_after"]["gain_early"],
        "reference_gain_after_ci95": history["gain_after"]["gain_ci95"],
        "reference_gain_windows": history["gain_after"]["n_windows"],
        "loss_first": float(np.mean(history["loss"][:10])) if history["loss"] else None,
        "loss_last": float(np.mean(history["loss"][-10:])) if history["loss"] else None,
        **evaluator_info,
    }
    m["bits_share_of_codec"] = m["bits_per_second"] / m["codec_bits_per_second"]
    m["flagged_spliced"] = min(m["flagged_spliced_reference"], m["flagged_spliced_training"])
    for name, row in main.get("attributes", {}).items():
        m[f"influence_{name}"] = row["index"]
        m[f"influence_{name}_ci95"] = row["ci95"]
    for q, row in test["settings"].items():
        m[f"sweep_{q}_bits_per_second"] = row["bits_per_second"]
        m[f"sweep_{q}_influence_index"] = row["influence"]["index"]
        m[f"sweep_{q}_two_choice"] = row["two_choice"]["accuracy"]
        m[f"sweep_{q}_copy_run_p99_seconds"] = row["copying"]["generated"]["run_seconds_p99"]
        m[f"sweep_{q}_flagged"] = row["copying"]["generated"]["flagged"]
    if ood is not None:
        o = ood["settings"][str(cfg.codebooks)]
        m.update({"ood_n_references": ood["n_references"], "ood_influence_index": o["influence"]["index"],
                  "ood_influence_ci95": o["influence"]["ci95"], "ood_two_choice": o["two_choice"]["accuracy"],
                  "ood_two_choice_ci95": o["two_choice"]["ci95"]})
    m["targets"] = {
        "influence": {"target": cfg.target_influence, "met": bool(m["influence_index"] >= cfg.target_influence)},
        "two_choice": {"target": cfg.target_two_choice, "met": bool(m["two_choice"] >= cfg.target_two_choice)},
        "copy_run_p99_seconds": {"target": cfg.target_copy_run_p99_seconds,
                                 "met": bool(m["copy_run_p99_seconds"] < cfg.target_copy_run_p99_seconds)},
        "flagged_generated": {"target": cfg.target_max_flagged, "met": bool(m["flagged_generated"] <= cfg.target_max_flagged)},
        "flagged_spliced": {"target": cfg.target_min_spliced_flagged,
                            "met": bool(m["flagged_spliced"] >= cfg.target_min_spliced_flagged)},
    }
    m["gate"] = {"min_influence": cfg.gate_min_influence, "min_two_choice": cfg.gate_min_two_choice,
                 "max_flagged": cfg.gate_max_flagged, "min_spliced_flagged": cfg.gate_min_spliced_flagged}
    return m


def run_influence(cfg: InfluenceConfig, model_dir, codec_dir, tokens, curated, judge_dir, out, metrics_path=None,
                  fallback_model=None, stop_after: int | None = None) -> dict:
    from components.common.audio import write_wav
    from components.influence import evaluate as ev
    from components.influence.copying import ngram_hashes
    from components.influence.evaluator import EvaluatorEnsemble, retrieval_accuracy, train_evaluator
    from components.influence.pairs import recordings, split_by_piece, usable
    from components.influence.plots import plot_sweep, plot_training
    from components.influence.train import attach_reference, fine_tune
    from components.omnicodec.decoding import check_compatible, decode_in_batches, load_codec
    from components.lyra.model import LyraForMusicGeneration
    from components.lyra.sampling import SamplingParams

    started = time.perf_counter()
    model_dir, codec_dir, tokens, curated, out = map(Path, (resolve_model(model_dir, fallback_model), codec_dir, tokens,
                                                             curated, out))
    with stage_run(STAGE) as run:
        log = run.log
        torch.manual_seed(cfg.seed)
        model = LyraForMusicGeneration.from_pretrained(model_dir, dtype=torch.float32)
        if model.config.reference_tokens:
            raise InfluenceError(f"{model_dir} already has a reference conditioner; start from a text-to-music Lyra")
        codec = load_codec(codec_dir)
        check_compatible(codec, model.config)
        conditioner = attach_reference(model, cfg, codec)
        mc = model.config
        R, W = mc.reference_frames, mc.window_frames
        G = int(round(cfg.seconds * mc.frame_rate))
        fine_pool, eval_pool = split_by_piece(recordings(tokens, "train"), cfg.fine_tune_share, cfg.seed)
        fine_pool = usable(fine_pool, R, W)
        valid, test = recordings(tokens, "valid"), recordings(tokens, "test")
        if not fine_pool:
            raise InfluenceError(f"{tokens}: no training recording is long enough for a {R}-frame reference and a "
                                 f"{W}-frame target")
        log.info("Influence from %s: %d fine-tune recordings (%d pieces), %d evaluator recordings (disjoint pieces); "
                 "bottleneck %d tokens x %d codebooks of %d = %.0f bit/s (codec %.0f bit/s)", model_dir, len(fine_pool),
                 len({r.piece_id for r in fine_pool}), len(eval_pool), conditioner.n_tokens, cfg.codebooks,
                 cfg.codebook_size, conditioner.bits_per_second(), codec.bitrate(None))

        # ---- fine-tune (resumable)
        checkpoints = ResumeFolder(checkpoint_folder(out), run_fingerprint(cfg, model_dir, codec_dir, tokens), log)
        t0 = time.perf_counter()
        peft_model, history = fine_tune(model, fine_pool, usable(valid, R, W), cfg, checkpoints, log, stop_after)
        if stop_after is not None and stop_after < cfg.steps:
            return {"stopped_after": stop_after}
        train_seconds = time.perf_counter() - t0
        log.info("reference gain on valid pairs: %.3f -> %.3f nats/code (first %d steps: %.3f)",
                 history["gain_before"]["gain"], history["gain_after"]["gain"], history["gain_after"]["early_steps"],
                 history["gain_after"]["gain_early"])
        adapter_dir = out.parent / f".{out.name}.adapter"
        peft_model.save_pretrained(adapter_dir)
        model = peft_model.merge_and_unload()
        model.eval()

        # ---- the evaluator: disjoint training pieces, selected on valid, reported on test
        t0 = time.perf_counter()
        ev_recs = [r for r in eval_pool if r.codes.shape[1] >= 2 * int(cfg.evaluator_crop_seconds * mc.frame_rate)]
        ev_recs = [ev_recs[i] for i in sorted(np.random.default_rng(cfg.seed).permutation(len(ev_recs))[:cfg.evaluator_recordings])]
        cap = 500                                     # first 10 s of each recording
        train_audio = decode_in_batches(codec, [r.codes[:, :cap] for r in ev_recs])
        valid_audio = decode_in_batches(codec, [r.codes[:, :cap] for r in valid])
        test_audio = decode_in_batches(codec, [r.codes[:, :cap] for r in test])
        evaluator = EvaluatorEnsemble([
            train_evaluator(train_audio, valid_audio, int(codec.sample_rate), steps=cfg.evaluator_steps,
                            crop_seconds=cfg.evaluator_crop_seconds, dim=cfg.evaluator_dim, seed=cfg.seed + k,
                            log=log if k == 0 else None)
            for k in range(cfg.evaluator_members)])
        evaluator_info = {"evaluator_valid_retrieval": evaluator.history["selected_valid_retrieval"],
                          "evaluator_test_retrieval": retrieval_accuracy(evaluator, test_audio, cfg.seed),
                          "evaluator_chance": 1 / max(1, len(test_audio)), "evaluator_recordings": len(ev_recs),
                          "evaluator_members": len(evaluator.members),
                          "evaluator_members_valid_retrieval": evaluator.history["members_valid_retrieval"],
                          "evaluator_seconds": time.perf_counter() - t0}
        log.info("CPU so far: %.0f s (fine-tune and evaluator)", cpu_seconds())
        log.info("evaluator: valid retrieval %.2f, test retrieval %.2f (chance %.2f)",
                 evaluator_info["evaluator_valid_retrieval"], evaluator_info["evaluator_test_retrieval"],
                 evaluator_info["evaluator_chance"])

        # ---- evaluation
        t0 = time.perf_counter()
        params = SamplingParams(temperature=cfg.temperature, top_k=cfg.top_k, top_p=0.0, cfg=cfg.cfg_text,
                                cfg_reference=cfg.cfg_reference, allow_end=False, decode_weights="model")
        from components.judge.model import Judge

        judge = Judge.load(judge_dir) if judge_dir and Path(judge_dir).is_dir() else None
        if cfg.eval_split == "valid":   # choosing settings: valid references only (test stays unseen)
            refs, reference_split = ev.reference_set(valid, cfg.eval_references, R, G, cfg.seed), "valid"
        else:
            refs, reference_split = ev.reference_set(test, cfg.eval_references, R, G, cfg.seed), "test"
            if refs is None:        # a tiny corpus with one test piece: valid joins it (and says so)
                refs, reference_split = ev.reference_set(valid + test, cfg.eval_references, R, G, cfg.seed), "valid+test"
        if refs is None:
            raise InfluenceError(f"{tokens}: the {cfg.eval_split} split needs recordings of at least 2 pieces of "
                                 f"{(R + G) / mc.frame_rate:.1f} s for the evaluation")
        log.info("references: %d recordings of %d %s pieces", len(refs.recs), len({r.piece_id for r in refs.recs}),
                 reference_split)
        # the mel detector's null: different valid pieces (the evaluator's pool where valid has < 2 pieces)
        null_pool = valid if len({r.piece_id for r in valid}) >= 2 else eval_pool
        mel = ev.mel_null_threshold(null_pool, codec, G, cfg.mel_null_pairs, cfg.seed)
        train_all = recordings(tokens, "train")
        ngram = int(round(cfg.ngram_seconds * mc.frame_rate))
        table = set().union(*(ngram_hashes(r.codes[0], ngram) for r in train_all))
        copy_ctx = {"song_audio": decode_in_batches(codec, [r.codes for r in refs.recs]), "ngram": ngram,
                    "max_run_frames": int(round(cfg.max_copy_run_seconds * mc.frame_rate)),
                    "mel_threshold": mel["threshold"], "share": cfg.splice_share,
                    "train_codes": [r.codes for r in train_all], "train_table": table}
        settings = list(range(1, cfg.codebooks + 1))
        test_result = ev.evaluate_references(model, codec, evaluator, refs, seconds=cfg.seconds, params=params,
                                             settings=settings, seed=cfg.seed, n_boot=cfg.bootstrap, judge=judge,
                                             truths=truths_of(curated, refs.recs), copy_ctx=copy_ctx, log=log)
        ood_result = None
        ood_refs = ev.reference_set(recordings(tokens, "ood"), cfg.ood_references, R, G, cfg.seed)
        if ood_refs is not None and cfg.ood_references >= 2 and cfg.eval_split == "test":   # reported results only
            ood_result = ev.evaluate_references(model, codec, evaluator, ood_refs, seconds=cfg.seconds, params=params,
                                                settings=[cfg.codebooks], seed=cfg.seed, n_boot=cfg.bootstrap, log=log)
        eval_seconds = time.perf_counter() - t0
        log.info("CPU so far: %.0f s (evaluation done)", cpu_seconds())

        metrics = flat_metrics(cfg, test_result, ood_result, codec, history, evaluator_info, mel)
        metrics.update({"eval_split": cfg.eval_split, "reference_split": reference_split, "train_seconds": train_seconds, "eval_seconds": eval_seconds, "cpu_seconds": cpu_seconds(),
                        "stage_seconds": time.perf_counter() - started, "model": os.fspath(model_dir)})
        examples = test_result.pop("examples")
        if ood_result is not None:
            ood_result.pop("examples")
        import shutil

        with atomic_dir(out) as staging:
            model.save_pretrained(staging)
            shutil.copytree(adapter_dir, staging / "adapter")
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in model.condition.reference.state_dict().items()},
                      staging / "adapter" / "reference_conditioner.safetensors")
            (staging / "examples").mkdir()
            for i, (ref, gen) in enumerate(zip(examples["excerpt"], examples["generation"])):
                write_wav(staging / "examples" / f"reference_{i}.wav", ref, int(codec.sample_rate))
                write_wav(staging / "examples" / f"generation_{i}.wav", gen, int(codec.sample_rate))
            atomic_write_json(staging / "influence.json", {"metrics": metrics, "test": test_result, "ood": ood_result,
                                                           "mel_detector": mel, "history": history,
                                                           "evaluator_history": evaluator.history,
                                                           "config": cfg.model_dump(mode="json")})
            plot_sweep(staging / "sweep.png", test_result["settings"],
                       {"influence": cfg.target_influence, "two_choice": cfg.target_two_choice,
                        "run": cfg.target_copy_run_p99_seconds}, baseline=test_result["baseline_no_reference"]["index"])
            plot_training(staging / "training.png", history, evaluator.history)
            write_lineage(staging, stage=STAGE, inputs={"model": model_dir, "codec": codec_dir, "tokens": tokens,
                                                        "curated": curated / "manifest.parquet"},
                          params=cfg, extra={"metrics": {k: v for k, v in metrics.items()
                                                                                if not isinstance(v, dict)}})
        shutil.rmtree(adapter_dir, ignore_errors=True)
        checkpoints.remove()
        metrics["stage_seconds"], metrics["cpu_seconds"] = time.perf_counter() - started, cpu_seconds()
        log.info("Influence: I = %.2f %s (target %.2f), two-choice %.2f (target %.2f), p99 shared run %.2f s, "
                 "flagged %.2f, spliced flagged %.2f; %.0f s (%.0f CPU s)", metrics["influence_index"],
                 [round(x, 2) for x in metrics["influence_ci95"]], cfg.target_influence, metrics["two_choice"],
                 cfg.target_two_choice, metrics["copy_run_p99_seconds"], metrics["flagged_generated"],
                 metrics["flagged_spliced"], metrics["stage_seconds"], metrics["cpu_seconds"])
        run.add_image("sweep", out / "sweep.png")
        run.add_image("training", out / "training.png")
        run.add_path("model", out)
        run.finish(metrics, metrics_path)
    return metrics


def main(args) -> int:
    from components.config import config_from_args

    cfg = config_from_args("influence", InfluenceConfig, args)
    run_influence(cfg, args.model, args.codec, args.tokens, args.curated, args.judge, args.out, args.metrics,
                  fallback_model=args.fallback_model)
    return 0
