"""Evaluating Influence on held-out pieces with an evaluator that never saw the conditioner's pieces.

For each reference recording i (test split; also a few from outside the corpus, the `ood` split):

    excerpt_i  its first R frames (what the conditioner reads)      song_i  the whole recording
    pos_i      a later segment of the same recording (no overlap)   neg_i   a segment of another piece
    gen_i      Lyra's generation from the excerpt alone (text dropped; reference guidance)
    base_i     the same seed with the reference dropped too (the unconditional baseline, measured)

    S_x = mean_i S(excerpt_i, x_i)          (the evaluator's cosine; see evaluator.py)
    influence index I = (S_gen - S_neg) / (S_pos - S_neg)      0: no more like the reference than a
                                                               random piece, 1: as like it as its own piece
    per attribute, the same ratio with agreement scores (attributes.py)
    two-choice: for references of different pieces a, b: is gen_a closer to excerpt_a than to excerpt_b?
    independent two-choice: the same question on the embedding of an evaluator nobody here trained (musicnn,
                components/evaluation), on as many references as the split has, with the no-reference baseline
                (same seeds) as its control

Intervals: bootstrap over references (I), Wilson (shares). Copying: copying.py, with spliced controls.
The bottleneck sweep repeats generation and scoring at 1..n_q codebooks.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from components.common.seeds import rng as seeded_rng
from components.common.stats import bootstrap_interval, wilson_interval
from components.influence import copying
from components.influence.attributes import agreement
from components.influence.pairs import Recording
from components.omnicodec.decoding import decode_in_batches
from components.lyra.conditioners import Conditions
from components.lyra.sampling import Sampler, SamplingParams


@dataclasses.dataclass
class ReferenceSet:
    recs: list[Recording]
    negs: list[Recording]          # neg_i: a recording of another piece
    excerpts: np.ndarray           # [n, K, R]
    pos: list[np.ndarray]          # codes [K, G] each
    neg: list[np.ndarray]


def reference_set(recs: list[Recording], n: int, R: int, G: int, seed: int) -> ReferenceSet | None:
    """Up to n recordings long enough for an excerpt and a later segment, distinct pieces first."""
    ok = [r for r in recs if r.codes.shape[1] >= R + G]
    order = seeded_rng(seed, "references").permutation(len(ok))
    chosen, pieces = [], set()
    for pass_ in (0, 1):                       # one recording per piece first, then fill up
        for i in order:
            r = ok[i]
            if len(chosen) < n and r not in chosen and (pass_ or r.piece_id not in pieces):
                chosen.append(r)
                pieces.add(r.piece_id)
    if len({r.piece_id for r in chosen}) < 2:
        return None
    negs = []
    for k, r in enumerate(chosen):
        others = [o for o in chosen[k + 1:] + chosen[:k] if o.piece_id != r.piece_id]
        negs.append(others[0])
    return ReferenceSet(chosen, negs, np.stack([r.codes[:, :R] for r in chosen]),
                        [r.codes[:, R:R + G] for r in chosen], [o.codes[:, R:R + G] for o in negs])


@torch.no_grad()
def generate(model, excerpts: np.ndarray, n_quantizers: int | None, seconds: float, params: SamplingParams,
             seed: int, with_reference: bool = True) -> np.ndarray:
    """Codes [n, K, G] from the excerpts alone (text dropped); with_reference=False: the baseline."""
    cfg = model.config
    n = len(excerpts)
    conditions = Conditions.build(np.zeros((n, cfg.text_dim), np.float32), seconds_total=seconds).drop("text")
    conditions = conditions.with_reference(torch.from_numpy(np.asarray(excerpts, np.int64)))
    if not with_reference:
        conditions = conditions.drop("reference")
    reference = model.condition.reference
    kept = reference.n_quantizers
    reference.n_quantizers = n_quantizers or kept
    try:
        g = torch.Generator().manual_seed(seed)
        out = Sampler(model, params).generate(conditions, int(round(seconds * cfg.frame_rate)), generator=g)
    finally:
        reference.n_quantizers = kept
    return out.codes.cpu().numpy()


def influence_index(s_gen: np.ndarray, s_pos: np.ndarray, s_neg: np.ndarray, n_boot: int, seed: int) -> dict:
    """I = (mean S_gen - mean S_neg) / (mean S_pos - mean S_neg), with a bootstrap interval over references."""
    rows = np.stack([s_gen, s_pos, s_neg], axis=1).astype(np.float64)

    def index(x):
        d = x[:, 1].mean() - x[:, 2].mean()
        return float((x[:, 0].mean() - x[:, 2].mean()) / d) if abs(d) > 1e-9 else float("nan")

    lo, hi = bootstrap_interval(rows, lambda x: np.nan_to_num(index(x), nan=0.0), n_resamples=n_boot, seed=seed)
    return {"index": index(rows), "ci95": [lo, hi], "s_gen": float(s_gen.mean()), "s_pos": float(s_pos.mean()),
            "s_neg": float(s_neg.mean()), "n": int(len(s_gen))}


def attribute_influence(s_gen: np.ndarray, s_pos: np.ndarray, s_neg: np.ndarray, name: str, n_boot: int,
                        seed: int) -> dict:
    """The influence index of one attribute over the references whose metadata says it (NaN = unknown)."""
    known = ~(np.isnan(s_gen) | np.isnan(s_pos) | np.isnan(s_neg))
    if known.sum() < 2:
        return {"not_measurable": f"{int(known.sum())} of {len(known)} references have a {name} in their metadata"}
    return influence_index(s_gen[known], s_pos[known], s_neg[known], n_boot, seed)


def index_gain(s_gen: np.ndarray, s_base: np.ndarray, s_pos: np.ndarray, s_neg: np.ndarray, n_boot: int,
               seed: int) -> dict:
    """I(generations) - I(same seeds without the reference), bootstrapped over references (paired):
    what the reference itself adds, beyond what any generation shares with the excerpts."""
    rows = np.stack([s_gen, s_base, s_pos, s_neg], axis=1).astype(np.float64)

    def gain(x):
        d = x[:, 2].mean() - x[:, 3].mean()
        return float((x[:, 0].mean() - x[:, 1].mean()) / d) if abs(d) > 1e-9 else float("nan")

    lo, hi = bootstrap_interval(rows, lambda x: np.nan_to_num(gain(x), nan=0.0), n_resamples=n_boot, seed=seed)
    return {"gain": gain(rows), "ci95": [lo, hi]}


def two_choice(sim_gen_ref: np.ndarray, pieces: list[str]) -> dict:
    """sim_gen_ref[i, j] = S(gen_i, excerpt_j): share of (i, j), different pieces, with S(i, i) > S(i, j)."""
    return pair_accuracy(_wins(sim_gen_ref, pieces))


def pair_accuracy(wins: list[list[bool]], n_boot: int = 1000, seed: int = 0) -> dict:
    """wins[i] = the outcomes of generation i against every other reference -> accuracy over all pairs,
    with a 95 % interval that resamples generations, not pairs: the pairs of one generation share it,
    so an interval over n pairs as if independent would be too narrow (n generations is the sample)."""
    counts = np.array([[sum(w), len(w)] for w in wins if w], dtype=float).reshape(-1, 2)     # [gens, (wins, pairs)]
    if not len(counts):
        return {"accuracy": float("nan"), "ci95": [float("nan"), float("nan")], "n_pairs": 0, "n_generations": 0}
    lo, hi = bootstrap_interval(counts, lambda c: c[:, 0].sum() / c[:, 1].sum(), n_resamples=n_boot, seed=seed)
    return {"accuracy": float(counts[:, 0].sum() / counts[:, 1].sum()), "ci95": [lo, hi],
            "n_pairs": int(counts[:, 1].sum()), "n_generations": len(counts)}


def instrument_two_choice(judge, gen_audio: list[np.ndarray], instruments: list[str | None]) -> dict | None:
    """The two-choice test by the conditioning judge (an independent model trained on real decoded
    music): for references a, b of different instruments, does the judge find gen_a likelier played
    by a's instrument than by b's? None without a judge or with fewer than 2 instruments."""
    if judge is None or "instrument" not in judge.classes:
        return None
    names = judge.classes["instrument"]
    idx = [names.index(x) if x in names else None for x in instruments]
    lp = judge.log_probs("instrument", judge.features(gen_audio))             # [n, classes]
    wins = [[bool(lp[i, idx[i]] > lp[i, idx[j]]) for j in range(len(idx)) if idx[j] is not None and idx[i] != idx[j]]
            for i in range(len(idx)) if idx[i] is not None]
    if not any(wins):
        return None
    return pair_accuracy(wins)


def independent_two_choice(model, codec, refs: ReferenceSet, independent, *, seconds: float, params: SamplingParams,
                           n_quantizers: int, seed: int, n_boot: int) -> dict:
    """Two-choice on musicnn's embedding (cosine after standardising by the excerpts' statistics), generations with
    the reference and, as the control, the same seeds without it."""
    n = len(refs.recs)
    gen = generate(model, refs.excerpts, n_quantizers, seconds, params, seed)
    base = generate(model, refs.excerpts, None, seconds, params, seed, with_reference=False)
    audio = decode_in_batches(codec, [*refs.excerpts, *gen, *base])
    emb = independent.score(audio, int(codec.sample_rate)).embeddings.astype(np.float64)
    mean, std = emb[:n].mean(0), emb[:n].std(0) + 1e-6
    unit = (emb - mean) / std
    unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    e_ref, e_gen, e_base = unit[:n], unit[n:2 * n], unit[2 * n:]
    pieces = [r.piece_id for r in refs.recs]
    return {"n_references": n, "n_pieces": len(set(pieces)),
            "two_choice": pair_accuracy(_wins(e_gen @ e_ref.T, pieces), n_boot, seed),
            "baseline_two_choice": pair_accuracy(_wins(e_base @ e_ref.T, pieces), n_boot, seed)}


def _wins(sim_gen_ref: np.ndarray, pieces: list[str]) -> list[list[bool]]:
    return [[bool(sim_gen_ref[i, i] > sim_gen_ref[i, j]) for j in range(len(pieces)) if pieces[i] != pieces[j]]
            for i in range(len(pieces))]


def evaluate_references(model, codec, evaluator, refs: ReferenceSet, *, seconds: float, params: SamplingParams,
                        settings: list[int], seed: int, n_boot: int, judge=None, truths: list[dict] | None = None,
                        copy_ctx: dict | None = None, log=None) -> dict:
    """Influence (overall, per attribute), two-choice and copy readings at each bottleneck setting."""
    sr = int(codec.sample_rate)
    n = len(refs.recs)
    gens = {q: generate(model, refs.excerpts, q, seconds, params, seed) for q in settings}
    base = generate(model, refs.excerpts, None, seconds, params, seed, with_reference=False)
    pieces = decode_in_batches(codec, [*refs.excerpts, *refs.pos, *refs.neg, *base, *(g for q in settings for g in gens[q])])
    excerpt_audio, pos_audio, neg_audio = pieces[:n], pieces[n:2 * n], pieces[2 * n:3 * n]
    base_audio = pieces[3 * n:4 * n]
    gen_audio = {q: pieces[(4 + k) * n:(5 + k) * n] for k, q in enumerate(settings)}
    emb = lambda xs: evaluator.embed(xs)                                         # noqa: E731
    e_ref, e_pos, e_neg, e_base = emb(excerpt_audio), emb(pos_audio), emb(neg_audio), emb(base_audio)
    s_pos, s_neg = np.sum(e_ref * e_pos, 1), np.sum(e_ref * e_neg, 1)
    piece_ids = [r.piece_id for r in refs.recs]
    result: dict = {"n_references": n, "n_pieces": len(set(piece_ids)),
                    "baseline_no_reference": influence_index(np.sum(e_ref * e_base, 1), s_pos, s_neg, n_boot, seed),
                    "baseline_two_choice_instrument": instrument_two_choice(judge, base_audio, [r.instrument for r in refs.recs]),
                    "settings": {}}
    attr_anchor = None
    if truths is not None:
        attr_anchor = {"pos": agreement(pos_audio, truths, excerpt_audio, sr, judge),
                       "neg": agreement(neg_audio, truths, excerpt_audio, sr, judge)}
    for q in settings:
        e_gen = emb(gen_audio[q])
        row = {"bits_per_second": model.condition.reference.bits_per_second(q),
               "influence": influence_index(np.sum(e_ref * e_gen, 1), s_pos, s_neg, n_boot, seed),
               "gain_over_no_reference": index_gain(np.sum(e_ref * e_gen, 1), np.sum(e_ref * e_base, 1), s_pos, s_neg,
                                                    n_boot, seed),
               "two_choice": two_choice(e_gen @ e_ref.T, piece_ids),
               "two_choice_instrument": instrument_two_choice(judge, gen_audio[q], [r.instrument for r in refs.recs]),
               "per_reference": {"recording": [r.name for r in refs.recs], "s_gen": np.sum(e_ref * e_gen, 1).tolist(),
                                 "s_no_reference": np.sum(e_ref * e_base, 1).tolist(), "s_pos": s_pos.tolist(),
                                 "s_neg": s_neg.tolist()}}
        if attr_anchor is not None:
            a_gen = agreement(gen_audio[q], truths, excerpt_audio, sr, judge)
            row["attributes"] = {name: attribute_influence(a_gen[name], attr_anchor["pos"][name],
                                                           attr_anchor["neg"][name], name, n_boot, seed)
                                 for name in a_gen}
        if copy_ctx is not None:
            row["copying"] = copy_readings(gens[q], gen_audio[q], refs, codec, copy_ctx, seed)
        result["settings"][str(q)] = row
        if log:
            log.info("bottleneck %d codebooks (%.0f bit/s): I = %.2f %s, two-choice %.2f, instrument two-choice %s", q,
                     row["bits_per_second"], row["influence"]["index"], [round(x, 2) for x in row["influence"]["ci95"]],
                     row["two_choice"]["accuracy"], None if row["two_choice_instrument"] is None
                     else round(row["two_choice_instrument"]["accuracy"], 2))
    result["examples"] = {"excerpt": excerpt_audio[:2], "generation": gen_audio[settings[-1]][:2]}
    return result


def copy_readings(gen_codes: np.ndarray, gen_audio: list[np.ndarray], refs: ReferenceSet, codec, ctx: dict,
                  seed: int) -> dict:
    """Detector readings on generations, on reference-spliced and on training-spliced controls."""
    sr, fr = int(codec.sample_rate), float(codec.frame_rate)
    g = seeded_rng(seed, "splice")
    song_codes = [r.codes for r in refs.recs]
    song_audio = ctx["song_audio"]
    kw = dict(sample_rate=sr, frame_rate=fr, ngram=ctx["ngram"], max_run_frames=ctx["max_run_frames"],
              mel_threshold=ctx["mel_threshold"])
    spliced_ref = [copying.splice(c, s, int(round(ctx["share"] * s.shape[1])), g) for c, s in zip(gen_codes, song_codes)]
    train = ctx["train_codes"]
    sources = [train[int(g.integers(len(train)))] for _ in gen_codes]
    spliced_train = [copying.splice(c, t, int(round(ctx["share"] * t.shape[1])), g) for c, t in zip(gen_codes, sources)]
    audio_ref, audio_train = (decode_in_batches(codec, spliced_ref), decode_in_batches(codec, spliced_train))
    rows = {
        "generated": [copying.detect(c, a, s, sa, ctx["train_table"], **kw)
                      for c, a, s, sa in zip(gen_codes, gen_audio, song_codes, song_audio)],
        "spliced_reference": [copying.detect(c, a, s, sa, ctx["train_table"], **kw)
                              for c, a, s, sa in zip(spliced_ref, audio_ref, song_codes, song_audio)],
        "spliced_training": [copying.detect(c, a, s, sa, ctx["train_table"], **kw)
                             for c, a, s, sa in zip(spliced_train, audio_train, song_codes, song_audio)],
    }
    out = {}
    for name, readings in rows.items():
        k, n = sum(r["flagged"] for r in readings), len(readings)
        runs = np.array([r["run_seconds"] for r in readings])
        out[name] = {"flagged": k / n, "flagged_ci95": list(wilson_interval(k, n)), "n": n,
                     "run_seconds_p99": float(np.percentile(runs, 99)), "run_seconds_max": float(runs.max()),
                     "mel_xcorr_mean": float(np.mean([r["mel_xcorr"] for r in readings])),
                     "by_detector": {d: float(np.mean([r[f"flag_{d}"] for r in readings])) for d in ("run", "ngram", "mel")}}
    return out


def null_pairs(recs: list[Recording]) -> tuple[list[tuple[int, int]], bool]:
    """(ordered index pairs of different pieces played by the same instrument, True), or every pair of
    different pieces and False where no instrument has two pieces."""
    different = [(i, j) for i in range(len(recs)) for j in range(len(recs)) if recs[i].piece_id != recs[j].piece_id]
    same = [(i, j) for i, j in different if recs[i].instrument is not None and recs[i].instrument == recs[j].instrument]
    return (same, True) if same else (different, False)


def mel_null_threshold(recs: list[Recording], codec, G: int, pairs: int, seed: int, quantile: float = 99.0) -> dict:
    """The mel detector's threshold: the 99th percentile of its reading between different pieces played
    by the same instrument (valid split, decoded), music that is not a copy but shares what Influence
    is meant to share (selected on valid, applied on test). Over any two pieces instead, sharing an
    instrument alone crossed the threshold: 1 of 8 valid generations flagged by the mel detector only,
    its reading at the null's mean. Falls back to any two pieces where no instrument has two pieces."""
    g = seeded_rng(seed, "mel-null")
    ok = [r for r in recs if r.codes.shape[1] >= G]
    if len({r.piece_id for r in ok}) < 2:
        return {"threshold": 0.9, "n_pairs": 0, "quantile": quantile, "same_instrument": False}
    candidates, same = null_pairs(ok)
    songs = decode_in_batches(codec, [r.codes for r in ok])
    readings = []
    for _ in range(pairs):
        i, j = candidates[int(g.integers(len(candidates)))]
        s = int(g.integers(0, ok[i].codes.shape[1] - G + 1))
        seg = songs[i][int(s * codec.sample_rate / codec.frame_rate):][:int(G * codec.sample_rate / codec.frame_rate)]
        readings.append(copying.mel_xcorr(seg, songs[j], int(codec.sample_rate)))
    return {"threshold": float(np.percentile(readings, quantile)), "n_pairs": len(readings), "quantile": quantile,
            "same_instrument": same, "distinct_pairs": len(candidates), "null_mean": float(np.mean(readings))}
