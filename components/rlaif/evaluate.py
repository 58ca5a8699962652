"""Did post-training help, or did it hack the reward? Held-out prompts, the pretrained model as control.

    held-out prompt i, sample j (seed (i, j), the same for both models):
        pre[i, j] ~ pretrained,  post[i, j] ~ post-trained          (exact sampling: the policies themselves)
    gain      = mean_i mean_j (reward(post) - reward(pre))     95 % bootstrap interval over prompts
    KL        = mean over post samples of log p_post(x) - log p_pre(x)      (nats per piece, Monte Carlo)
    best-of-n = the pretrained model's best of n samples by reward, n the smallest with
                log n - (n-1)/n >= KL (the KL of best-of-n to its base): the same KL, spent without training
    diversity = mean distance between the mel statistics of two generations of one prompt
    loudness  = mean RMS dBFS and the share of near-silent pieces
    judge     = the conditioning judge's (components/judge: trained on real music, not on Lyra or the
                reward) accuracy on the prompt clip's instrument, pre vs post on the same seeds, with an
                exact one-sided McNemar p-value for "post-training made the prompt harder to hear"
    independent = an evaluator nobody here trained (components/evaluation: musicnn): KAD of each model's pieces to
                the split's real clips (through the codec), post - pre with the interval of paired resamples, and
                adherence (the prompted instrument ranked by its tagger), post - pre with a one-sided p-value
"""

from __future__ import annotations

import math

import numpy as np
import torch

from components.common.seeds import derive_seed
from components.common.stats import bootstrap_interval, paired_p_greater, wilson_interval
from components.lyra.sampling import Sampler, code_log_probs
from components.rlaif.policy import EXACT, PromptTable, n_frames
from components.rlaif.rewards import AudioReward, checked

SILENCE_DBFS = -60.0


class IndependentCheck:
    """The independent evaluator with the real clips every model's pieces are compared with."""

    def __init__(self, real_audio: list[np.ndarray], sample_rate: int, threads: int | None = None):
        from components.evaluation.evaluator import Evaluator

        self.evaluator = Evaluator(threads=threads)
        self.sample_rate = sample_rate
        self.reference = self.evaluator.score(real_audio, sample_rate)

    def compare(self, pre_audio: list[np.ndarray], post_audio: list[np.ndarray],
                instruments: list[str | None] | None, seed: int = 0) -> dict:
        """Flat metrics (`independent_*`) of the post-trained pieces against the pretrained ones (same seeds)."""
        from components.evaluation.report import paired_systems

        pre, post = (self.evaluator.score(a, self.sample_rate) for a in (pre_audio, post_audio))
        c = paired_systems(pre, post, self.reference, instruments, seed=seed)
        out = {"independent_n": c["n"], "independent_n_reference": c["n_reference"],
               "independent_kad_pretrained": c["kad_base"], "independent_kad_post_trained": c["kad_system"],
               "independent_kad_difference": c["kad_difference"],
               "independent_kad_difference_interval95": c["kad_difference_interval95"],
               "independent_kad_worse": c["kad_worse"],
               "independent_fad_pretrained": c["fad_base"], "independent_fad_post_trained": c["fad_system"],
               "independent_vendi_pretrained": c["vendi_base"], "independent_vendi_post_trained": c["vendi_system"]}
        if "adherence" in c and c["adherence"]["n"]:
            a = c["adherence"]
            out.update({"independent_adherence_n": a["n"],
                        "independent_adherence_pretrained": c["adherence_base"]["adherence"],
                        "independent_adherence_post_trained": c["adherence_system"]["adherence"],
                        "independent_adherence_difference": a["difference"],
                        "independent_adherence_difference_interval95": a["difference_interval95"],
                        "independent_adherence_p_post_worse": a["p_first_worse"]})
        return out


class JudgeCheck:
    """The conditioning judge asked whether a piece carries its prompt's instrument."""

    HEAD = "instrument"

    def __init__(self, judge_dir):
        from components.judge.model import Judge

        self.judge = Judge.load(judge_dir)
        self.classes = self.judge.classes[self.HEAD]

    def hits(self, audio: list[np.ndarray], sample_rate: int, truth: list[str | None]) -> np.ndarray:
        """[n] 1.0 where the judge names the truth, 0.0 where not, nan where the truth is unknown to it."""
        if sample_rate != self.judge.sample_rate:
            raise ValueError(f"the judge hears {self.judge.sample_rate} Hz audio, the codec decodes {sample_rate} Hz")
        said = self.judge.predict(self.HEAD, self.judge.features(audio))
        return np.array([np.nan if t not in self.classes else float(self.classes[s] == t) for s, t in zip(said, truth)])


def best_of_n_for_kl(kl: float, n_max: int) -> int:
    """Smallest n whose best-of-n policy is at least `kl` nats from its base (log n - (n-1)/n)."""
    for n in range(1, n_max + 1):
        if math.log(n) - (n - 1) / n >= kl:
            return n
    return n_max


@torch.no_grad()
def sample(model, table: PromptTable, rows: list[int], seeds: list[int]):
    """One exact sample per (row, seed): codes [B, K, T], lengths [B]."""
    T = n_frames(model, table.seconds)
    codes, lengths = [], []
    for row, seed in zip(rows, seeds):          # one generator per sample: pre and post draw with the same seeds
        out = Sampler(model, EXACT).generate(table.conditions([row]), T, generator=torch.Generator().manual_seed(seed))
        codes.append(out.codes)
        lengths.append(out.lengths)
    return torch.cat(codes), torch.cat(lengths)


def pieces(codes: torch.Tensor, lengths: torch.Tensor) -> list[np.ndarray]:
    return [codes[i, :, :int(lengths[i])].cpu().numpy() for i in range(len(lengths))]


@torch.no_grad()
def sequence_log_probs(model, codes, lengths, table: PromptTable, rows, batch: int = 16) -> np.ndarray:
    out = []
    for i in range(0, len(rows), batch):
        c = table.conditions(rows[i:i + batch])
        out.append(code_log_probs(model, codes[i:i + batch], lengths[i:i + batch], c, EXACT).total)
    return torch.cat(out).double().numpy()


def diversity(features: np.ndarray, groups: np.ndarray) -> float:
    """Mean distance between the feature vectors of pieces of the same prompt."""
    dists = []
    for g in np.unique(groups):
        f = features[groups == g]
        dists += [float(np.linalg.norm(f[a] - f[b])) for a in range(len(f)) for b in range(a + 1, len(f))]
    return float(np.mean(dists)) if dists else float("nan")


def scored_samples(model, table: PromptTable, rows: list[int], seeds: list[int], reward, codec,
                   judge: JudgeCheck | None = None) -> dict:
    """Samples of `model` for (row, seed) pairs with their reward, mel statistics, loudness and
    (with a judge and the table's instruments) whether the judge hears the prompt's instrument."""
    from components.common.audio import rms_dbfs
    from components.common.mel import mel_statistics

    codes, lengths = sample(model, table, rows, seeds)
    ps = pieces(codes, lengths)
    audio = AudioReward(codec, None).audio(ps)
    return {"codes": codes, "lengths": lengths, "audio": audio,
            "reward": np.array(checked(reward(ps, [table.captions[r] for r in rows]), len(ps), "reward")),
            "features": np.stack([mel_statistics(a, codec.sample_rate) for a in audio]),
            "dbfs": np.array([rms_dbfs(a) for a in audio]),
            "judge_hits": (judge.hits(audio, codec.sample_rate, [table.instruments[r] for r in rows])
                           if judge is not None and table.instruments else np.full(len(rows), np.nan))}


def mean_dbfs(dbfs: np.ndarray) -> float:
    finite = dbfs[np.isfinite(dbfs)]
    return float(finite.mean()) if len(finite) else -math.inf


def known_mean(values: np.ndarray) -> float:
    known = values[~np.isnan(values)]
    return float(known.mean()) if len(known) else float("nan")


def monitor(model, table: PromptTable, reward, codec, *, prompts: int, samples: int, seed: int,
            judge: JudgeCheck | None = None) -> dict:
    """The independent measures of a model during training, on the first `prompts` valid prompts."""
    rows = [i for i in range(min(prompts, len(table.captions))) for _ in range(samples)]
    s = scored_samples(model, table, rows, [derive_seed(seed, r, j % samples) for j, r in enumerate(rows)], reward,
                       codec, judge)
    return {"reward": float(s["reward"].mean()), "diversity": diversity(s["features"], np.asarray(rows)),
            "rms_dbfs": mean_dbfs(s["dbfs"]), "silent_fraction": float(np.mean(s["dbfs"] < SILENCE_DBFS)),
            "judge_instrument_accuracy": known_mean(s["judge_hits"])}


def judge_comparison(before: np.ndarray, after: np.ndarray) -> dict:
    """Paired judge outcomes (same prompts, same seeds) of the pretrained and the post-trained model."""
    known = ~(np.isnan(before) | np.isnan(after))
    b, a = before[known].astype(bool), after[known].astype(bool)
    n = int(known.sum())
    return {"judge_n": n,
            "judge_instrument_accuracy_pretrained": float(b.mean()) if n else float("nan"),
            "judge_instrument_accuracy_post_trained": float(a.mean()) if n else float("nan"),
            "judge_instrument_interval95_pretrained": list(wilson_interval(int(b.sum()), n)),
            "judge_instrument_interval95_post_trained": list(wilson_interval(int(a.sum()), n)),
            # one-sided: the pretrained model heard right more often than the post-trained one
            "judge_p_post_worse": paired_p_greater(b, a) if n else float("nan")}


def evaluate(pre, post, table: PromptTable, reward, codec, *, samples: int, seed: int, n_bootstrap: int,
             best_of_n_max: int, judge: JudgeCheck | None = None, independent: IndependentCheck | None = None,
             independent_samples: int = 2) -> dict:
    """The metrics above, on the prompts of `table` (held out), `samples` pieces per prompt and model."""
    n_prompts = len(table.captions)
    rows = [i for i in range(n_prompts) for _ in range(samples)]
    seeds = [derive_seed(seed, i, j) for i in range(n_prompts) for j in range(samples)]

    def scored(model, rows, seeds) -> dict:
        return scored_samples(model, table, rows, seeds, reward, codec, judge)

    before, after = scored(pre, rows, seeds), scored(post, rows, seeds)
    pre_r, post_r = before["reward"].reshape(n_prompts, samples), after["reward"].reshape(n_prompts, samples)
    gain = (post_r - pre_r).mean(axis=1)                                           # per prompt
    lo, hi = bootstrap_interval(gain, n_resamples=n_bootstrap, seed=seed)
    # KL(post || pre), Monte Carlo over the post-trained model's own samples
    kl = float(np.mean(sequence_log_probs(post, after["codes"], after["lengths"], table, rows)
                       - sequence_log_probs(pre, after["codes"], after["lengths"], table, rows)))
    K, T = post.config.num_codebooks, n_frames(post, table.seconds)
    codes_per_piece = float((after["lengths"] * K + (after["lengths"] < T)).float().mean())    # drawn codes (+ END)
    n = best_of_n_for_kl(max(kl, 0.0), best_of_n_max)
    bon_rows = [i for i in range(n_prompts) for _ in range(n)]
    bon_seeds = [derive_seed(seed, i, samples + j) for i in range(n_prompts) for j in range(n)]     # new draws
    bon = scored(pre, bon_rows, bon_seeds)["reward"].reshape(n_prompts, n).max(axis=1)
    groups = np.asarray(rows)
    metrics = {
        "n_prompts": n_prompts, "samples_per_prompt": samples,
        "reward_pretrained": float(pre_r.mean()), "reward_post_trained": float(post_r.mean()),
        "reward_gain": float(gain.mean()), "reward_gain_ci95": [lo, hi], "reward_gain_ci_excludes_zero": lo > 0,
        "kl_nats_per_piece": kl, "kl_nats_per_code": kl / max(codes_per_piece, 1.0),
        "best_of_n": n, "best_of_n_kl_nats": math.log(n) - (n - 1) / n, "reward_best_of_n": float(bon.mean()),
        "best_of_n_capped": math.log(n) - (n - 1) / n < kl,       # n hit best_of_n_max: best-of-n spent less KL
        "post_trained_minus_best_of_n": float(post_r.mean() - bon.mean()),
        "diversity_pretrained": diversity(before["features"], groups),
        "diversity_post_trained": diversity(after["features"], groups),
        "rms_dbfs_pretrained": mean_dbfs(before["dbfs"]), "rms_dbfs_post_trained": mean_dbfs(after["dbfs"]),
        "silent_fraction_pretrained": float(np.mean(before["dbfs"] < SILENCE_DBFS)),
        "silent_fraction_post_trained": float(np.mean(after["dbfs"] < SILENCE_DBFS)),
        "length_frames_pretrained": float(before["lengths"].float().mean()),
        "length_frames_post_trained": float(after["lengths"].float().mean()),
        **judge_comparison(before["judge_hits"], after["judge_hits"]),
    }
    if independent is not None:     # the first pieces of every prompt, the same for both models
        read = [k for k in range(len(rows)) if k % samples < independent_samples]
        metrics.update(independent.compare([before["audio"][k] for k in read], [after["audio"][k] for k in read],
                                           [table.instruments[rows[k]] for k in read] if table.instruments else None,
                                           seed))
    return metrics
