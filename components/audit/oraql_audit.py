"""Is ORAQL right? ORAQL (the quality model trained here on the demo's own renders, and RLAIF's reward) read
against the evaluator nobody here trained (musicnn, components/evaluation).

Systems, each on the same held-out (test) prompts, `seconds` long:

    real (other pieces)   real valid clips, raw                     -> the floor of KAD
    codec round trip      the test clips through OmniCodec          -> the codec's ceiling
    lyra                  pretrained Lyra with the prompt's text
    lyra, no text         the same seeds without the text
    lyra, T=<hot>         hotter sampling (a worse system by construction)
    lyra@init             the same architecture untrained (seeded random weights)
    best-of-<n> by ORAQL  ORAQL's pick among n of pretrained Lyra's candidates
    rlaif                 the post-trained Lyra (its gate's verdict aside)

    per system: ORAQL's mean overall score, KAD of its clips to the real test clips (raw) by the independent
    embedding, tag KL to the prompt's clip (generated systems), adherence
    agreement:  Spearman's rho between ORAQL's mean and -KAD over the systems, exact permutation p-value
    detector:   "distinguishing AI-generated from human-composed music" as a measured task: ROC AUC on held-out
                test clips, real vs generated (every generated system but lyra@init), by ORAQL's score as it is
                (no fitting) and by a logistic-regression probe on the independent embedding fitted on VALID
                clips (real valid vs generations from valid captions); twice: real clips raw, and real clips
                through the codec (then the detector cannot lean on the codec's sound); bootstrap intervals
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from pathlib import Path

import numpy as np
import torch

from components.common.atomic import atomic_write_json
from components.common.reporting import stage_run
from components.config import StageConfig
from components.evaluation import adherence
from components.evaluation.distances import kad, kad_interval, tag_kl
from components.evaluation.evaluator import Evaluator

STAGE = "oraql_audit"


class OraqlAuditConfig(StageConfig):
    """The `oraql_audit` params section."""

    n_prompts: int = 24             # test captions (and as many valid ones for the probe)
    seconds: float = 5.0            # ORAQL's window
    best_of: int = 4                # candidates per prompt for the best-of system
    hot_temperature: float = 1.5
    batch_size: int = 32
    bootstrap: int = 1000
    seed: int = 0
    threads: int | None = None


def spearman_exact(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(rho, one-sided p of rho >= observed over every permutation of y); n <= 9 systems, so exact."""
    from scipy.stats import rankdata

    rx, ry = rankdata(x), rankdata(y)
    rho = float(np.corrcoef(rx, ry)[0, 1])
    if len(x) > 9:
        from scipy.stats import spearmanr

        return rho, float(spearmanr(x, y, alternative="greater").pvalue)
    null = [np.corrcoef(rx, np.asarray(p))[0, 1] for p in itertools.permutations(ry)]
    return rho, float(np.mean(np.asarray(null) >= rho - 1e-12))


def auc_with_interval(scores: np.ndarray, is_real: np.ndarray, n_boot: int, seed: int) -> dict:
    """ROC AUC (higher score = real) with a percentile bootstrap resampling real and generated clips apart."""
    from sklearn.metrics import roc_auc_score

    scores, is_real = np.asarray(scores, float), np.asarray(is_real, bool)
    rng = np.random.default_rng(seed)
    real, generated = np.flatnonzero(is_real), np.flatnonzero(~is_real)
    stats = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(real, len(real)), rng.choice(generated, len(generated))])
        stats.append(roc_auc_score(is_real[idx], scores[idx]))
    return {"auc": float(roc_auc_score(is_real, scores)), "ci95": [float(np.percentile(stats, 2.5)),
                                                                 float(np.percentile(stats, 97.5))],
            "n_real": int(len(real)), "n_generated": int(len(generated))}


def probe_scores(train_x: np.ndarray, train_real: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    """P(real) from a standardised logistic regression fitted on the valid clips."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    probe.fit(train_x, train_real)
    return probe.predict_proba(test_x)[:, 1]


@dataclasses.dataclass
class System:
    name: str
    audio: list[np.ndarray]
    generated: bool
    paired: bool                    # clip i answers test prompt i (tag KL, adherence)


def _generate(model, prompts, cfg, seconds: float, temperature: float, seed: int, unconditional: bool, progress,
              desc: str) -> list:
    from components.lyra.config import GenerateConfig
    from components.lyra.sample import generate_set

    gen_cfg = GenerateConfig(sample_seconds=seconds, temperature=temperature, seed=seed, batch_size=cfg.batch_size,
                             n_prompts=len(prompts))
    codes, _ = generate_set(model, prompts, gen_cfg, unconditional, progress, desc)
    return codes


def run_audit(cfg: OraqlAuditConfig, lyra_dir, rlaif_dir, oraql_dir, codec_dir, tokens, curated, out,
              metrics_path=None) -> dict:
    from components.evaluation.real_sets import codec_round_trip, curated_clips
    from components.lyra.generation import load_model
    from components.lyra.sample import choose_prompts
    from components.omnicodec import decoding as codec_io
    from components.oraql.model import load_oraql
    from components.oraql.score import score_batch
    from components.tokens.dataset import TokenDataset

    lyra_dir, rlaif_dir, oraql_dir, codec_dir, tokens, curated, out = map(
        Path, (lyra_dir, rlaif_dir, oraql_dir, codec_dir, tokens, curated, out))
    with stage_run(STAGE) as run:
        log, started = run.log, time.perf_counter()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        lyra = load_model(lyra_dir)
        codec = codec_io.load_codec(codec_dir, device=next(lyra.parameters()).device)
        codec_io.check_compatible(codec, lyra.config)
        sr = int(codec.sample_rate)
        decode = lambda codes: codec_io.decode_in_batches(codec, list(codes), cfg.batch_size)  # noqa: E731
        raw = lambda clips: curated_clips(curated, [c.clip_id for c in clips], cfg.seconds, sr)  # noqa: E731
        round_trip = lambda clips: codec_round_trip(clips, codec, cfg.seconds, cfg.batch_size)  # noqa: E731

        splits = {s: list({c.clip_id: c for c in TokenDataset(tokens, split=s)}.values()) for s in ("test", "valid")}
        prompts = {s: choose_prompts(clips, [c.instrument or "" for c in clips], cfg.n_prompts)
                   for s, clips in splits.items() if len(clips) >= 2}
        inputs = {"lyra": lyra_dir, "rlaif": rlaif_dir, "oraql": oraql_dir, "codec": codec_dir, "tokens": tokens,
                  "curated": curated}
        if set(prompts) != {"test", "valid"}:
            metrics = {"not_measurable": {"oraql_audit": f"the audit needs 2 test and 2 valid clips; {tokens} has "
                                                         f"{len(splits['test'])} and {len(splits['valid'])}"}}
            log.info("%s", metrics["not_measurable"]["oraql_audit"])
            with run.output(out, inputs=inputs, params=cfg, lineage={"metrics": metrics}) as staged:
                atomic_write_json(staged.dir / "audit.json", {"metrics": metrics})
            run.finish(metrics, metrics_path)
            return metrics
        test_prompts = prompts["test"]
        oraql = load_oraql(oraql_dir)

        # --- the systems
        gen = lambda model, temp, seed, uncond, desc, split="test": decode(  # noqa: E731
            _generate(model, prompts[split], cfg, cfg.seconds, temp, seed, uncond, run.progress, desc))
        systems = [System("real (other pieces)", raw(splits["valid"]), False, False),
                   System("codec round trip", round_trip(splits["test"]), False, False)]
        systems.append(System("lyra", gen(lyra, 1.0, cfg.seed, False, "lyra"), True, True))
        systems.append(System("lyra, no text", gen(lyra, 1.0, cfg.seed, True, "lyra, no text"), True, True))
        systems.append(System(f"lyra, T={cfg.hot_temperature:g}", gen(lyra, cfg.hot_temperature, cfg.seed, False,
                                                                        "lyra, hot"), True, True))
        candidates = [systems[2].audio] + [gen(lyra, 1.0, cfg.seed + 1000 * k, False, f"best-of candidates {k + 1}")
                                           for k in range(1, cfg.best_of)]
        cand_scores = np.stack([score_batch(oraql, c, sr)[:, 0] for c in candidates])          # [n, prompts]
        picks = cand_scores.argmax(0)
        systems.append(System(f"best-of-{cfg.best_of} by ORAQL", [candidates[k][i] for i, k in enumerate(picks)],
                              True, True))
        rlaif = load_model(rlaif_dir) if (rlaif_dir / "config.json").is_file() else None
        if rlaif is not None:
            systems.append(System("rlaif", gen(rlaif, 1.0, cfg.seed, False, "rlaif"), True, True))
        torch.manual_seed(cfg.seed)
        untrained = type(lyra)(lyra.config).eval()
        systems.append(System("lyra@init", gen(untrained, 1.0, cfg.seed, False, "lyra@init"), True, True))
        valid_generated = gen(lyra, 1.0, cfg.seed, False, "lyra (valid captions)", "valid")

        # --- both evaluators on every clip
        evaluator = Evaluator(threads=cfg.threads)
        real_test = raw(splits["test"])
        reference = evaluator.score(real_test, sr)
        position = {c.clip_id: j for j, c in enumerate(splits["test"])}
        prompt_clip = reference.take([position[p.clip.clip_id] for p in test_prompts])
        instruments = [p.clip.instrument for p in test_prompts]
        rows, scored = [], {}
        for s in systems:
            e = evaluator.score(s.audio, sr)
            o = score_batch(oraql, s.audio, sr)[:, 0]
            scored[s.name] = (e, o)
            lo, hi = kad_interval(e.embeddings, reference.embeddings, n_resamples=200, seed=cfg.seed)
            row = {"system": s.name, "n": len(s.audio), "oraql": float(o.mean()),
                   "kad": kad(e.embeddings, reference.embeddings), "kad_interval": [lo, hi], "generated": s.generated}
            if s.paired:
                row["tag_kl"] = tag_kl(prompt_clip.tags, e.tags)
                row["adherence"] = adherence.summary(e.tags, instruments, cfg.seed)["adherence"]
            rows.append(row)
            log.info("%-22s ORAQL %.3f  KAD %.1f [%.1f, %.1f]%s", s.name, row["oraql"], row["kad"], lo, hi,
                     f"  KL {row['tag_kl']:.3f}" if "tag_kl" in row else "")
        rho, p = spearman_exact(np.array([r["oraql"] for r in rows]), -np.array([r["kad"] for r in rows]))
        gen_rows = [r for r in rows if "tag_kl" in r]
        rho_kl, p_kl = spearman_exact(np.array([r["oraql"] for r in gen_rows]), -np.array([r["tag_kl"] for r in gen_rows]))

        # --- the detector: real vs generated on test, the probe fitted on valid
        valid_gen = evaluator.score(valid_generated, sr)
        # the generated side: every generated system but the untrained one
        generated = [s.name for s in systems if s.generated and s.name != "lyra@init"]
        generated_emb = np.concatenate([scored[n][0].embeddings for n in generated])
        generated_oraql = np.concatenate([scored[n][1] for n in generated])
        # the real side, twice: (test embeddings, test ORAQL scores, the valid embeddings the probe learns from)
        codec_test, codec_oraql = scored["codec round trip"]
        real_sides = {
            "real raw": (reference.embeddings, score_batch(oraql, real_test, sr)[:, 0],
                         scored["real (other pieces)"][0].embeddings),
            "real through the codec": (codec_test.embeddings, codec_oraql,
                                       evaluator.score(round_trip(splits["valid"]), sr).embeddings)}
        detector = {}
        for variant, (real_emb, real_oraql, valid_real_emb) in real_sides.items():
            is_real = np.r_[np.ones(len(real_emb)), np.zeros(len(generated_emb))].astype(bool)
            probe = probe_scores(np.concatenate([valid_real_emb, valid_gen.embeddings]),
                                 np.r_[np.ones(len(valid_real_emb)), np.zeros(len(valid_gen))].astype(int),
                                 np.concatenate([real_emb, generated_emb]))
            detector[variant] = {
                "oraql": auc_with_interval(np.r_[real_oraql, generated_oraql], is_real, cfg.bootstrap, cfg.seed),
                "independent_probe": auc_with_interval(probe, is_real, cfg.bootstrap, cfg.seed)}
            log.info("detector (%s): ORAQL AUC %.2f %s, independent probe AUC %.2f %s", variant,
                     detector[variant]["oraql"]["auc"], np.round(detector[variant]["oraql"]["ci95"], 2).tolist(),
                     detector[variant]["independent_probe"]["auc"],
                     np.round(detector[variant]["independent_probe"]["ci95"], 2).tolist())
        log.info("ORAQL vs independent KAD over %d systems: Spearman %.2f (p = %.3g); vs tag KL over %d: %.2f (p = %.3g)",
                 len(rows), rho, p, len(gen_rows), rho_kl, p_kl)

        metrics = {
            "n_systems": len(rows), "n_prompts": len(test_prompts), "seconds": cfg.seconds,
            "spearman_oraql_vs_kad": rho, "spearman_oraql_vs_kad_p": p,
            "spearman_oraql_vs_tag_kl": rho_kl, "spearman_oraql_vs_tag_kl_p": p_kl,
            **{f"detector_{v.replace(' ', '_')}_{k}_auc": d[k]["auc"] for v, d in detector.items() for k in d},
            **{f"detector_{v.replace(' ', '_')}_{k}_auc_ci95": d[k]["ci95"] for v, d in detector.items() for k in d},
            "best_of_picks_oraql_gain": float(cand_scores.max(0).mean() - cand_scores[0].mean()),
            "stage_seconds": time.perf_counter() - started, "clips_scored": evaluator.misses,
            "clips_from_cache": evaluator.hits,
        }
        with run.output(out, inputs=inputs, params=cfg, lineage={"metrics": metrics}) as staged:
            atomic_write_json(staged.dir / "audit.json", {"systems": rows, "detector": detector, "metrics": metrics,
                                                          "evaluator": evaluator.name})
            _plot(staged.image("oraql_vs_independent", "oraql_vs_independent.png"), rows, rho, p)
        run.add_path("audit", out)
        run.finish(metrics, metrics_path)
    return metrics


def _plot(path: Path, rows: list[dict], rho: float, p: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=100)
    for r in rows:
        lo, hi = r["kad_interval"]
        ax.errorbar(r["kad"], r["oraql"], xerr=[[r["kad"] - lo], [hi - r["kad"]]], fmt="o" if r["generated"] else "s",
                    capsize=2)
        ax.annotate(r["system"], (r["kad"], r["oraql"]), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.set(xlabel="KAD x1000 to the real test clips (independent evaluator; lower = nearer real music)",
           ylabel="ORAQL mean overall score", title=f"ORAQL vs an evaluator nobody here trained: Spearman "
                                                    f"{rho:.2f} (p = {p:.2g}, {len(rows)} systems)")
    ax.title.set_fontsize(9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(args) -> int:
    from components.config import config_from_args

    cfg = config_from_args("oraql_audit", OraqlAuditConfig, args)
    run_audit(cfg, args.lyra, args.rlaif, args.oraql, args.codec, args.tokens, args.curated, args.out, args.metrics)
    return 0

