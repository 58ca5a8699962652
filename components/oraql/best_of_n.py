"""Best-of-n generation with ORAQL, and the `lyra_best_of_n` asset that measures what it buys.

    prompt x N ──Lyra, one batch──► N candidates ──OmniCodec──► audio ──ORAQL──► keep the best

The asset (`lyra oraql best-of-n`): N = max(n_values) candidates for each of P held-out (`test`)
captions, all P x N generated in one batch. For n in n_values it reports what choosing the best of
n candidates yields, exactly over every n-subset of the N (no resampling noise): when the N
candidates of a prompt are sorted by ORAQL score, the r-th best (r = 1..N) is the best of a random
n-subset with probability C(N - r, n - 1) / C(N, n). Per n:

    mean      expected ORAQL score of the selection, averaged over prompts
    worst     the lowest score a selection can have: the n-th worst candidate, over all prompts
    share_below_median   expected share of selections below the median single candidate (n = 1)
    judge_mean           an independent evaluator's mean on the same selections (does a measure ORAQL
                         was not trained on agree?): any `Evaluator` passed in, e.g. the conditioning
                         judge (components/judge); absent, the curve says so instead of guessing
    independent          the evaluator nobody here trained (components/evaluation, musicnn): the expected
                         adherence of the selections (exact, like `mean`) and KAD of the selections to the real
                         test clips through the codec (n = 1: every candidate; n > 1: `kad_draws` random
                         n-subsets per prompt, ORAQL's pick of each), with its bootstrap interval: does choosing
                         by ORAQL bring the picks nearer to real music, or only nearer to what ORAQL likes?
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Protocol

import numpy as np

from components.common.atomic import atomic_write_json
from components.common.audio import write_wav
from components.common.reporting import stage_run
from components.common.stage import NOT_MEASURABLE
from components.oraql.config import BestOfNConfig

STAGE = "lyra_best_of_n"


class Evaluator(Protocol):
    """An independent measure of generations: higher = better, one number per audio.

    `prompts[i]` describes what audio i was asked to be: {"caption", "clip_id", "piece_id",
    "instrument"} (the held-out clip whose caption was the prompt)."""

    name: str

    def __call__(self, audios: list[np.ndarray], sample_rate: int, prompts: list[dict]) -> np.ndarray: ...


# ------------------------------------------------------------------------------- selection
def pick_best(audios: list[np.ndarray], sample_rate: int, oraql_dir: str | Path) -> dict:
    """ORAQL's choice among candidates: {"chosen": index, "scores": [overall per candidate], ...}."""
    from components.oraql.model import load_oraql
    from components.oraql.score import score_batch

    scores = score_batch(load_oraql(oraql_dir), audios, sample_rate)
    return {"n": len(audios), "chosen": int(np.argmax(scores[:, 0])), "scores": [round(float(s), 4) for s in scores[:, 0]],
            "fidelity": [round(float(s), 4) for s in scores[:, 1]], "coherence": [round(float(s), 4) for s in scores[:, 2]],
            "oraql": str(oraql_dir)}


def selection_probabilities(N: int, n: int) -> np.ndarray:
    """p[r] = P(the (r+1)-th best of N is the best of a uniformly random n-subset), r = 0..N-1."""
    return np.array([math.comb(N - 1 - r, n - 1) / math.comb(N, n) for r in range(N)])


def selection_curve(scores: np.ndarray, n_values: list[int], judge: np.ndarray | None = None) -> list[dict]:
    """scores [P, N] ORAQL per candidate (judge [P, N] optional) -> one row per n (see module doc)."""
    P, N = scores.shape
    order = np.argsort(-scores, axis=1, kind="stable")                 # best first
    ranked = np.take_along_axis(scores, order, axis=1)
    ranked_judge = np.take_along_axis(judge, order, axis=1) if judge is not None else None
    median = float(np.median(scores))
    rows = []
    for n in n_values:
        p = selection_probabilities(N, n)
        row = {"n": n, "mean": float((ranked @ p).mean()), "worst": float(ranked[:, N - n].min()),
               "share_below_median": float(((ranked < median) @ p).mean()), "median_n1": median}
        if ranked_judge is not None:
            row["judge_mean"] = float(np.nanmean(ranked_judge @ p))    # prompts whose instrument the judge knows
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------- the stage
def independent_curve(overall: np.ndarray, scores, reference, instruments: list[str | None], n_values: list[int],
                      seed: int, kad_draws: int = 8) -> list[dict]:
    """overall [P, N] ORAQL; scores: the evaluator's Scores of the P x N candidates (prompt-major); reference:
    its Scores of the real set. One row per n: expected adherence, KAD of ORAQL's picks (see module doc)."""
    from components.evaluation import adherence
    from components.evaluation.distances import kad_of_picks

    P, N = overall.shape
    adh, _ = adherence.adherence(scores.tags, [i for i in instruments for _ in range(N)])     # nan: no such tag
    curve = selection_curve(overall, n_values, adh.reshape(P, N))
    rng = np.random.default_rng(seed)
    rows = []
    for row in curve:
        n = row["n"]
        if n == 1:
            picks = np.arange(P * N)
        else:
            picks = np.array([p * N + subset[np.argmax(overall[p, subset])] for p in range(P) for _ in range(kad_draws)
                              for subset in [rng.choice(N, n, replace=False)]])
        point, lo, hi = kad_of_picks(scores.embeddings, reference.embeddings, picks, seed=seed)
        rows.append({"n": n, "adherence": row.get("judge_mean"), "kad": point, "kad_interval": [lo, hi],
                     "n_picks": int(len(picks)), "distinct_picks": int(len(set(picks.tolist())))})
    return rows


def independent_readings(cfg: BestOfNConfig, tokens: Path, codec, audios: list, overall: np.ndarray, prompts: list,
                         log) -> list[dict] | None:
    """independent_curve on the stage's candidates against the real test clips through the codec; None (and why,
    in the log) when either set has fewer than 2 clips."""
    from components.evaluation.evaluator import Evaluator as IndependentEvaluator
    from components.evaluation.real_sets import codec_round_trip
    from components.tokens.dataset import TokenDataset

    sr, scorer = int(codec.sample_rate), IndependentEvaluator()
    reference = scorer.score(codec_round_trip(TokenDataset(tokens, split="test"), codec, cfg.seconds), sr)
    if len(reference) < 2 or len(prompts) < 2:
        log.info("independent evaluator: not measurable (%d real test clips, %d prompts; 2 needed)", len(reference),
                 len(prompts))
        return None
    rows = independent_curve(overall, scorer.score(audios, sr), reference, [p["instrument"] for p in prompts],
                             cfg.n_values, cfg.seed)
    for row in rows:
        log.info("best of %d, independent evaluator (musicnn): adherence %.3f, KAD of the picks to real test clips "
                 "%.1f %s (%d picks, %d distinct)", row["n"], row["adherence"], row["kad"],
                 [round(x, 1) for x in row["kad_interval"]], row["n_picks"], row["distinct_picks"])
    return rows


def held_out_prompts(tokens: Path, n: int, seed: int) -> list:
    """n test-split clips with distinct captions (their captions are the prompts)."""
    from components.tokens.dataset import TokenDataset

    ds = TokenDataset(tokens, split="test")
    if len(ds) == 0:
        raise ValueError(f"{tokens} has no test clips to take prompts from")
    rng = np.random.default_rng(seed)
    chosen, seen = [], set()
    for i in rng.permutation(len(ds)):
        clip = ds[int(i)]
        caption = clip.captions[0] if clip.captions else ""
        if caption not in seen:
            seen.add(caption)
            chosen.append(clip)
        if len(chosen) == n:
            break
    return chosen


def generate_candidates(model, codec, text: np.ndarray, n: int, seconds: float, params, seed: int):
    """P prompts x n candidates in one generation call -> (audios [P * n], lengths, seconds taken)."""
    from components.omnicodec import decoding as codec_io
    from components.lyra.generation import generate_codes

    generated, gen_s = generate_codes(model, np.repeat(text, n, axis=0), seconds, params, seed)
    t0 = time.perf_counter()
    audios = codec_io.decode_pieces(codec, generated.codes, generated.lengths)
    return audios, generated, gen_s, time.perf_counter() - t0


def plot_curve(path: Path, curve: list[dict], judge_name: str | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [r["n"] for r in curve]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    axes[0].plot(ns, [r["mean"] for r in curve], "o-", label="mean selected")
    axes[0].plot(ns, [r["worst"] for r in curve], "s--", label="worst selected")
    axes[0].axhline(curve[0]["median_n1"], color="grey", lw=0.8, label="median single candidate")
    axes[0].set(xscale="log", xticks=ns, xticklabels=ns, xlabel="n (candidates)", ylabel="ORAQL overall",
                title="ORAQL score of the best of n")
    axes[0].legend(fontsize=7)
    axes[1].plot(ns, [r["share_below_median"] for r in curve], "o-", label="share below the n=1 median")
    if judge_name:
        axes[1].plot(ns, [r["judge_mean"] for r in curve], "d-", label=f"{judge_name} (independent)")
    axes[1].set(xscale="log", xticks=ns, xticklabels=ns, xlabel="n (candidates)", ylim=(0, 1),
                title="below-median selections" + (" / independent judge" if judge_name else ""))
    axes[1].legend(fontsize=7)
    for ax in axes:
        ax.minorticks_off()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_selections(staged, clips, audios: list, overall: np.ndarray, sr: int, document: dict, curve: list,
                     judge_name: str | None) -> None:
    """Per prompt its first candidate and ORAQL's pick, to listen to side by side; the scores; the curve."""
    N = overall.shape[1]
    for p, clip in enumerate(clips):
        best = int(np.argmax(overall[p]))
        name = f"{p:02d}_{clip.clip_id}"
        write_wav(staged.dir / f"{name}_best_of_{N}.wav", audios[p * N + best], sr)
        write_wav(staged.dir / f"{name}_first.wav", audios[p * N], sr)
    atomic_write_json(staged.dir / "best_of_n.json", document)
    plot_curve(staged.image("best_of_n_curve", "best_of_n.png"), curve, judge_name)


def run_best_of_n_stage(cfg: BestOfNConfig, lyra_dir, codec_dir, tokens, oraql_dir, out, metrics_path=None,
                        judge: Evaluator | None = None) -> dict:
    from components.omnicodec import decoding as codec_io
    from components.lyra.config import GenerateConfig
    from components.lyra.generation import load_model, sampling_params
    from components.oraql.model import load_oraql
    from components.oraql.score import score_batch

    lyra_dir, codec_dir, tokens, oraql_dir, out = map(Path, (lyra_dir, codec_dir, tokens, oraql_dir, out))
    N = max(cfg.n_values)
    started, started_cpu = time.perf_counter(), time.process_time()
    with stage_run(STAGE) as run:
        model = load_model(lyra_dir)
        codec = codec_io.load_codec(codec_dir)
        codec_io.check_compatible(codec, model.config)
        oraql = load_oraql(oraql_dir)
        clips = held_out_prompts(tokens, cfg.n_prompts, cfg.seed)
        prompts = [{"caption": c.captions[0], "clip_id": c.clip_id, "piece_id": c.piece_id, "instrument": c.instrument}
                   for c in clips]
        text = np.stack([c.text_embeddings[0] for c in clips])
        params = sampling_params(GenerateConfig(temperature=cfg.temperature, top_k=cfg.top_k, cfg=cfg.cfg))
        audios, generated, gen_s, decode_s = generate_candidates(model, codec, text, N, cfg.seconds, params, cfg.seed)
        sr = int(codec.sample_rate)
        t0 = time.perf_counter()
        scores = score_batch(oraql, audios, sr)
        score_s = time.perf_counter() - t0
        overall = scores[:, 0].reshape(len(clips), N)
        judge_scores = None if judge is None else np.asarray(
            judge(audios, sr, [p for p in prompts for _ in range(N)]), dtype=float).reshape(len(clips), N)
        unjudged = None
        if judge is not None and np.isnan(judge_scores).all():     # no prompt's clip has a tag the judge learnt
            unjudged = (f"{getattr(judge, 'name', 'the judge')}: none of the {len(clips)} prompts' clips has an "
                        "instrument the judge learnt (the corpus has no instrument tags)")
            judge, judge_scores = None, None
        curve = selection_curve(overall, cfg.n_values, judge_scores)
        judge_name = getattr(judge, "name", None) if judge is not None else None
        t0 = time.perf_counter()
        independent = independent_readings(cfg, tokens, codec, audios, overall, prompts, run.log) if cfg.independent else None
        independent_seconds = time.perf_counter() - t0
        for row in curve:
            run.log.info("best of %d: mean %.3f, worst %.3f, share below the n=1 median %.2f%s", row["n"], row["mean"],
                         row["worst"], row["share_below_median"],
                         f", {judge_name} {row['judge_mean']:.3f}" if judge_name else "")
        metrics = {
            "n_prompts": len(clips), "candidates_per_prompt": N, "seconds_per_candidate": cfg.seconds,
            **{f"best_of_{r['n']}_{k}": r[k] for r in curve for k in ("mean", "worst", "share_below_median", "judge_mean")
               if k in r},
            "median_single_candidate": curve[0]["median_n1"],
            **({f"best_of_{r['n']}_independent_{k}": r[k] for r in independent for k in ("kad", "kad_interval", "adherence")}
               if independent else {}),
            **({"independent_seconds": independent_seconds} if independent else {}),
            "judge": judge_name or (f"{NOT_MEASURABLE}: {unjudged}" if unjudged else
                                    "not available (no independent evaluator was passed; see components/oraql/best_of_n.py)"),
            "generation_seconds": gen_s, "decode_seconds": decode_s, "scoring_seconds": score_s,
            "oraql_seconds_audio_per_second": sum(len(a) for a in audios) / sr / score_s if score_s else None,
            "stage_seconds": time.perf_counter() - started, "stage_cpu_seconds": time.process_time() - started_cpu,
        }
        document = {"curve": curve, "prompts": prompts, "oraql_scores": overall.round(4).tolist(),
                    "fidelity": scores[:, 1].reshape(len(clips), N).round(4).tolist(),
                    "coherence": scores[:, 2].reshape(len(clips), N).round(4).tolist(),
                    "judge": judge_name, "judge_scores": None if judge_scores is None else judge_scores.round(4).tolist(),
                    "independent": independent,
                    "sampling": params.__dict__, "seed": cfg.seed, "metrics": metrics}
        with run.output(out, inputs={"lyra": lyra_dir, "codec": codec_dir, "tokens": tokens, "oraql": oraql_dir},
                        params=cfg, lineage={"metrics": metrics}) as staged:
            write_selections(staged, clips, audios, overall, sr, document, curve, judge_name)
        run.add_path("selections", out)
        run.finish(metrics, metrics_path)
    return metrics


def load_evaluator(spec: str, model_dir: str | None) -> Evaluator:
    """`module:factory` -> factory(model_dir): how `--judge` plugs an independent evaluator in (the
    backbone's conditioning judge, for one), without this package importing it."""
    import importlib

    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"--judge must be MODULE:FACTORY, got {spec!r}")
    factory = getattr(importlib.import_module(module), name)
    return factory(model_dir) if model_dir else factory()


class JudgeEvaluator:
    """The backbone's conditioning judge (components/judge: trained only on real audio of training pieces,
    never on ORAQL's labels) as an Evaluator: the probability it gives the prompted instrument."""

    name = "judge P(prompted instrument)"

    def __init__(self, judge):
        self.judge = judge
        # a judge trained on a library without instrument tags has no such head: every answer unknown
        self.classes = {c: i for i, c in enumerate(judge.classes.get("instrument", []))}

    def __call__(self, audios: list[np.ndarray], sample_rate: int, prompts: list[dict]) -> np.ndarray:
        from components.common.audio import resample

        if not self.classes:
            return np.full(len(audios), np.nan)
        pieces = [resample(np.asarray(a, dtype=np.float32), sample_rate, self.judge.sample_rate) for a in audios]
        log_probs = self.judge.log_probs("instrument", self.judge.features(pieces))
        wanted = [self.classes.get(p.get("instrument")) for p in prompts]
        return np.array([np.exp(lp[w]) if w is not None else np.nan for lp, w in zip(log_probs, wanted)])


def conditioning_judge(model_dir: str) -> JudgeEvaluator:
    """`--judge components.oraql.best_of_n:conditioning_judge --judge-model data/models/judge`."""
    from components.judge.model import Judge

    return JudgeEvaluator(Judge.load(model_dir))
