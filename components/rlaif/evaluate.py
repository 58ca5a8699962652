"""Did post-training help, or did it hack the reward? Held-out prompts, the pretrained model as control.

    held-out prompt i, sample j (seed (i, j), the same for both models):
        pre[i, j] ~ pretrained,  post[i, j] ~ post-trained          (exact sampling: the policies themselves)
    gain      = mean_i mean_j (reward(post) - reward(pre))     95 % bootstrap interval over prompts
    KL        = mean over post samples of log p_post(x) - log p_pre(x)      (nats per piece, Monte Carlo)
    best-of-n = the pretrained model's best of n samples by reward, n the smallest with
                log n - (n-1)/n >= KL (the KL of best-of-n to its base): the same KL, spent without training
    diversity = mean distance between the mel statistics of two generations of one prompt
    loudness  = mean RMS dBFS and the share of near-silent pieces
"""

from __future__ import annotations

import math

import numpy as np
import torch

from components.common.seeds import derive_seed
from components.lyra.sampling import Sampler, code_log_probs
from components.rlaif.policy import EXACT, PromptTable, n_frames
from components.rlaif.rewards import AudioReward, checked

SILENCE_DBFS = -60.0


def bootstrap_interval(values: np.ndarray, n: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    values = np.asarray(values, dtype=np.float64)
    means = values[rng.integers(0, len(values), (n, len(values)))].mean(axis=1)
    return float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, 1 - (1 - level) / 2))


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


def scored_samples(model, table: PromptTable, rows: list[int], seeds: list[int], reward, codec) -> dict:
    """Samples of `model` for (row, seed) pairs with their reward, mel statistics and loudness."""
    from components.common.audio import rms_dbfs
    from components.common.mel import mel_statistics

    codes, lengths = sample(model, table, rows, seeds)
    ps = pieces(codes, lengths)
    audio = AudioReward(codec, None).audio(ps)
    return {"codes": codes, "lengths": lengths,
            "reward": np.array(checked(reward(ps, [table.captions[r] for r in rows]), len(ps), "reward")),
            "features": np.stack([mel_statistics(a, codec.sample_rate) for a in audio]),
            "dbfs": np.array([rms_dbfs(a) for a in audio])}


def mean_dbfs(dbfs: np.ndarray) -> float:
    finite = dbfs[np.isfinite(dbfs)]
    return float(finite.mean()) if len(finite) else -math.inf


def monitor(model, table: PromptTable, reward, codec, *, prompts: int, samples: int, seed: int) -> dict:
    """The independent measures of a model during training, on the first `prompts` held-out prompts."""
    rows = [i for i in range(min(prompts, len(table.captions))) for _ in range(samples)]
    s = scored_samples(model, table, rows, [derive_seed(seed, r, j % samples) for j, r in enumerate(rows)], reward, codec)
    return {"reward": float(s["reward"].mean()), "diversity": diversity(s["features"], np.asarray(rows)),
            "rms_dbfs": mean_dbfs(s["dbfs"]), "silent_fraction": float(np.mean(s["dbfs"] < SILENCE_DBFS))}


def evaluate(pre, post, table: PromptTable, reward, codec, *, samples: int, seed: int, n_bootstrap: int,
             best_of_n_max: int) -> dict:
    """The metrics above, on the prompts of `table` (held out), `samples` pieces per prompt and model."""
    n_prompts = len(table.captions)
    rows = [i for i in range(n_prompts) for _ in range(samples)]
    seeds = [derive_seed(seed, i, j) for i in range(n_prompts) for j in range(samples)]

    def scored(model, rows, seeds) -> dict:
        return scored_samples(model, table, rows, seeds, reward, codec)

    before, after = scored(pre, rows, seeds), scored(post, rows, seeds)
    pre_r, post_r = before["reward"].reshape(n_prompts, samples), after["reward"].reshape(n_prompts, samples)
    gain = (post_r - pre_r).mean(axis=1)                                           # per prompt
    lo, hi = bootstrap_interval(gain, n_bootstrap, seed)
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
    }
    return metrics
