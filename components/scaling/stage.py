"""`lyra scaling sweep`: train the sweep, fit L(N, D), check it on a held-out run, recommend.

    token shards --(first k codebooks)--> k-codebook shards
          |                                      |
    sweep grid (sizes x steps) + held-out run    codebook runs
          | lyra lm train, each run's folder keyed by its config (reused / resumed)
          v                                      v
    fit L(N, D) on the sweep's VALID loss ---> exponents fixed, E, A, B refitted per codec
          |  bootstrap over runs -> intervals        |
          +-> predict the held-out run (error)       +-> N_opt, D_opt per codec
          +-> N_opt, D_opt for each budget and for the profile's own `lm` run

Outputs (atomic): fit.json (the law, intervals, held-out check, recommendations, every run),
runs.csv, scaling.png, lineage.json. The `test` split is never read here: the sweep's losses
are `valid` losses (lm train's selection split), and the held-out run is a held-out *run*.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from components.common.atomic import atomic_write_json
from components.common.reporting import stage_run
from components.config import load_stage_config
from components.lyra.config import LMConfig
from components.scaling.codebooks import bitrate_kbps, truncated_tokens
from components.scaling.config import ScalingConfig
from components.scaling.fit import ScalingLaw, bootstrap_fit, refit_with_exponents
from components.scaling.plots import plot_scaling
from components.scaling.recommend import FIT_FILE, FLOPS_PER_PARAM_TOKEN, ScalingError, compute_optimal
from components.scaling.runs import RunFailed, RunResult, train_runs
from components.scaling.sweep import frames_trained, non_embedding_params, plan_runs
from components.tokens.shards import read_meta

STAGE = "lyra_scaling"


def run_row(result: RunResult, meta_by_k: dict[int, dict]) -> dict:
    spec = result.spec
    N = non_embedding_params(spec.lm.model, meta_by_k[spec.num_codebooks])
    D = frames_trained(spec.lm)
    m = result.metrics
    return {"name": spec.name, "role": spec.role, "size": f"d{spec.lm.model.dim}-L{spec.lm.model.n_layers}",
            "dim": spec.lm.model.dim, "n_layers": spec.lm.model.n_layers, "steps": spec.lm.steps,
            "num_codebooks": spec.num_codebooks, "N": N, "D": D, "C": FLOPS_PER_PARAM_TOKEN * N * D,
            "loss": m["val_loss"], "unigram_loss": m["unigram_val_loss"], "parameters_total": m["parameters"],
            "train_seconds": m["train_seconds"], "run_wall_seconds": result.cost.get("wall_seconds"),
            "run_cpu_seconds": result.cost.get("cpu_seconds"), "reused": result.reused, "key": result.key}


def _interval(values, confidence: float) -> list[float]:
    tail = 100 * (1 - confidence) / 2
    return [float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))]


def recommend_with_intervals(law: ScalingLaw, samples: list[ScalingLaw], flops: float, confidence: float) -> dict:
    rec = compute_optimal(law, flops).as_dict()
    boot = [compute_optimal(s, flops) for s in samples if min(s.alpha, s.beta, s.A, s.B) > 0]
    if boot:
        rec["params_interval"] = _interval([b.params for b in boot], confidence)
        rec["tokens_interval"] = _interval([b.tokens for b in boot], confidence)
    return rec


def held_out_prediction(table: pd.DataFrame, law: ScalingLaw, samples: list[ScalingLaw], cfg: ScalingConfig) -> dict:
    """The held-out run, bigger than every fitted run, predicted before it is looked at, beside a measured
    baseline: the best sweep run's loss ("no further gain")."""
    sweep = table[table.role == "sweep"]
    h = table[table.role == "holdout"].iloc[0]
    predicted = float(law.loss(h.N, h.D))
    boot_pred = [float(s.loss(h.N, h.D)) for s in samples]
    error = abs(predicted - h.loss) / h.loss
    best_sweep = float(sweep.loss.min())
    return {"name": h["name"], "N": int(h.N), "D": int(h.D), "measured_loss": float(h.loss),
            "predicted_loss": predicted, "predicted_interval": _interval(boot_pred, cfg.confidence) if boot_pred else None,
            "relative_error": error, "max_error": cfg.holdout_max_error, "passed": bool(error <= cfg.holdout_max_error),
            "baseline_best_sweep_loss": best_sweep, "baseline_relative_error": abs(best_sweep - h.loss) / h.loss,
            "extrapolation": {"N": float(h.N / sweep.N.max()), "D": float(h.D / sweep.D.max())}}


def codebook_variant(table: pd.DataFrame, k: int, law: ScalingLaw, samples: list[ScalingLaw], meta_k: dict,
                     current_C: float, cfg: ScalingConfig) -> tuple[dict, ScalingLaw | None]:
    """Fewer codebooks: the main fit's exponents, E/A/B refitted on the variant's runs; the compute-optimal size
    against the full codec's, with an interval from each bootstrap exponent pair on resampled runs."""
    rows_k = table[(table.role == "codebooks") & (table.num_codebooks == k)]
    law_k = refit_with_exponents(rows_k.N, rows_k.D, rows_k.loss, law.alpha, law.beta)
    if min(law_k.A, law_k.B) <= 0:
        return {"bitrate_kbps": bitrate_kbps(meta_k), "law": law_k.as_dict(), "recommendations": None}, None
    rng = np.random.default_rng(cfg.seed + k)
    ratios = []
    for s in samples:
        idx = rng.integers(0, len(rows_k), len(rows_k))
        lk = refit_with_exponents(rows_k.N.to_numpy()[idx], rows_k.D.to_numpy()[idx], rows_k.loss.to_numpy()[idx],
                                  s.alpha, s.beta)
        if min(lk.A, lk.B, s.A, s.B) > 0:
            ratios.append(compute_optimal(lk, current_C).params / compute_optimal(s, current_C).params)
    recs = {f"{b:.0e}": compute_optimal(law_k, b).as_dict() for b in cfg.budgets}
    return {"bitrate_kbps": bitrate_kbps(meta_k), "law": law_k.as_dict(),
            "recommendations": {b: r["params"] for b, r in recs.items()}, "n_runs": len(rows_k),
            "optimal_params_ratio_vs_K": compute_optimal(law_k, current_C).params / compute_optimal(law, current_C).params,
            "optimal_params_ratio_interval": _interval(ratios, cfg.confidence) if ratios else None}, law_k


def scaling_metrics(table: pd.DataFrame, document: dict, residuals: np.ndarray, sweep_seconds: float) -> dict:
    law, intervals, holdout, current = document["law"], document["intervals"], document["holdout"], document["current_lm"]
    return {
        "runs": len(table), "runs_trained": int((~table.reused).sum()), "runs_reused": int(table.reused.sum()),
        "sweep_seconds": sweep_seconds,
        # every run's CPU time (trained now or earlier): on `parallel` idle cores the sweep takes about
        # this / parallel seconds; sweep_seconds is what it took on this (possibly shared) machine
        "runs_cpu_seconds": float(table.run_cpu_seconds.fillna(0).sum()),
        "sweep_only_cpu_seconds": float(table[table.role == "sweep"].run_cpu_seconds.fillna(0).sum()),
        **{p: law[p] for p in ("E", "A", "B", "alpha", "beta")},
        **{f"{p}_lo": intervals[p][0] for p in ("alpha", "beta")},
        **{f"{p}_hi": intervals[p][1] for p in ("alpha", "beta")},
        "fit_rms_log_residual": document["fit_rms_log_residual"], "max_abs_residual": float(np.max(np.abs(residuals))),
        "holdout_measured_loss": holdout["measured_loss"], "holdout_predicted_loss": holdout["predicted_loss"],
        "holdout_relative_error": holdout["relative_error"],
        "holdout_baseline_relative_error": holdout["baseline_relative_error"],
        "current_flops": current["flops"], "current_params": current["N"], "current_tokens": current["D"],
        "optimal_params_at_current_flops": current["optimal"]["params"],
        "optimal_tokens_at_current_flops": current["optimal"]["tokens"],
        **{f"optimal_params_ratio_k{k}": v["optimal_params_ratio_vs_K"] for k, v in document["codecs"].items()
           if "optimal_params_ratio_vs_K" in v},
    }


def fit_document(table: pd.DataFrame, rows: list[dict], fit, meta: dict, meta_by_k: dict, base_lm: LMConfig,
                 cfg: ScalingConfig, log) -> tuple[dict, dict]:
    """fit.json: the law with intervals, the held-out check, the profile's own run and the budgets asked for,
    the laws on fewer codebooks, every run. (document, the variants' laws for the plot)"""
    law, sweep, K = fit.law, table[table.role == "sweep"], int(meta["num_codebooks"])
    holdout = held_out_prediction(table, law, fit.samples, cfg)
    log.info("held-out run %s: measured %.3f, predicted %.3f (error %.1f %%; best sweep run %.3f, error %.1f %%)",
             holdout["name"], holdout["measured_loss"], holdout["predicted_loss"], 100 * holdout["relative_error"],
             holdout["baseline_best_sweep_loss"], 100 * holdout["baseline_relative_error"])
    current_N, current_D = non_embedding_params(base_lm.model, meta), frames_trained(base_lm)
    current_C = FLOPS_PER_PARAM_TOKEN * current_N * current_D
    current = {"N": current_N, "D": current_D, "flops": current_C, "predicted_loss": float(law.loss(current_N, current_D)),
               "optimal": recommend_with_intervals(law, fit.samples, current_C, cfg.confidence)}
    recommendations = {f"{b:.0e}": recommend_with_intervals(law, fit.samples, b, cfg.confidence) for b in cfg.budgets}
    codecs = {K: {"bitrate_kbps": bitrate_kbps(meta), "law": law.as_dict(),
                  "recommendations": {k: v["params"] for k, v in recommendations.items()}}}
    variant_laws: dict[int, ScalingLaw] = {}
    for k in meta_by_k:
        if k == K:
            continue
        codecs[k], law_k = codebook_variant(table, k, law, fit.samples, meta_by_k[k], current_C, cfg)
        if law_k is None:
            log.warning("K=%d: the refit put A or B at 0; no interior optimum to recommend", k)
            continue
        variant_laws[k] = law_k
        interval = codecs[k]["optimal_params_ratio_interval"]
        log.info("K=%d (%.1f kbps): optimal N at the profile's budget x%.2f of K=%d's %s", k, codecs[k]["bitrate_kbps"],
                 codecs[k]["optimal_params_ratio_vs_K"], K,
                 f"(interval {interval[0]:.2f}-{interval[1]:.2f})" if interval else "")
    document = {
        "law": law.as_dict(), "intervals": {name: list(v) for name, v in fit.intervals.items()},
        "confidence": cfg.confidence, "n_runs": fit.n_runs, "n_bootstrap": fit.n_bootstrap,
        "fit_rms_log_residual": float(np.sqrt(np.mean(np.log(sweep.loss.to_numpy() / law.loss(sweep.N, sweep.D)) ** 2))),
        "conventions": {"N": "non-embedding parameters (no code embeddings, no output heads)",
                        "D": "training frames (positions); each frame carries K codes",
                        "C": "6 N D FLOPs", "loss": "valid cross-entropy, nats per code"},
        "num_codebooks": K, "holdout": holdout, "current_lm": current, "recommendations": recommendations,
        "codecs": {str(k): v for k, v in codecs.items()}, "runs": rows,
    }
    return document, variant_laws


def run_scaling(cfg: ScalingConfig, base_lm: LMConfig, tokens: Path, out: Path, metrics_path=None) -> dict:
    tokens, out = Path(tokens), Path(out)
    if not (tokens / "meta.json").is_file():
        raise ScalingError(f"{tokens} is not a token-shard folder (no meta.json); run `lyra tokens build` first")
    runs_root = out.parent / f".{out.name}.runs"        # outlives the output folder: runs are reused from here
    with stage_run(STAGE) as run:
        log = run.log
        meta = read_meta(tokens)
        K = int(meta["num_codebooks"])
        variants = {k: truncated_tokens(tokens, k, runs_root) for k in cfg.codebooks if k != K}
        meta_by_k = {K: meta, **{k: read_meta(p) for k, p in variants.items()}}
        specs = plan_runs(cfg, base_lm, tokens, variants)
        log.info("scaling sweep: %d runs (%d sweep, 1 held-out, %d on fewer codebooks), %d at a time",
                 len(specs), sum(s.role == "sweep" for s in specs), sum(s.role == "codebooks" for s in specs),
                 cfg.parallel)
        started = time.monotonic()
        results = train_runs(specs, runs_root, cfg.parallel, cfg.threads_per_run, log)
        sweep_seconds = time.monotonic() - started
        rows = [run_row(r, meta_by_k) for r in results]
        table = pd.DataFrame(rows)
        sweep = table[table.role == "sweep"]
        fit = bootstrap_fit(sweep.N, sweep.D, sweep.loss, n_bootstrap=cfg.bootstrap, confidence=cfg.confidence,
                            seed=cfg.seed)
        law = fit.law
        log.info("fit on %d runs: L = %.3f + %.3g / N^%.3f + %.3g / D^%.3f", fit.n_runs, law.E, law.A, law.alpha,
                 law.B, law.beta)
        residuals = sweep.loss.to_numpy() - law.loss(sweep.N, sweep.D)
        document, variant_laws = fit_document(table, rows, fit, meta, meta_by_k, base_lm, cfg, log)
        holdout = document["holdout"]
        run.report_check("holdout_prediction", holdout["passed"], metadata={"relative_error": holdout["relative_error"]})
        with run.output(out, inputs={"tokens": tokens}, params=cfg, lineage={"lm": base_lm.model_dump(mode="json")}) as staged:
            atomic_write_json(staged.dir / FIT_FILE, document)
            table.to_csv(staged.dir / "runs.csv", index=False)
            plot_scaling(staged.image("scaling", "scaling.png"), rows, law, document["current_lm"]["optimal"],
                         variant_laws, K, cfg.budgets)
        run.add_path("fit", out / FIT_FILE)
        run.add_markdown("runs", table[["name", "role", "N", "D", "loss", "reused"]].to_markdown(index=False)
                         if _has_tabulate() else table.to_string())
        metrics = scaling_metrics(table, document, residuals, sweep_seconds)
        run.finish(metrics, metrics_path)
    return metrics


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def main(args) -> int:
    from components.config import config_from_args

    cfg = config_from_args("scaling", ScalingConfig, args)
    base_lm = load_stage_config("lm", LMConfig, params_path=args.params, profile=args.profile)
    try:
        run_scaling(cfg, base_lm, Path(args.tokens), Path(args.out), args.metrics)
    except (ScalingError, RunFailed, FileNotFoundError, ValueError) as exc:
        import sys

        print(f"lyra scaling sweep: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0

