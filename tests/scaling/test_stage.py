"""The whole stage on a synthetic token set: real `lyra lm train` runs, a fit, reuse on a re-run."""

import json

import pytest

from components.lyra.config import LMConfig
from components.scaling.config import ScalingConfig
from components.scaling.stage import run_scaling
from tests.lyra.synthetic import write_synthetic_tokens


@pytest.mark.slow
def test_the_sweep_trains_fits_recommends_and_reuses_its_runs(tmp_path):
    tokens = tmp_path / "tokens"
    write_synthetic_tokens(tokens, pieces_per_class=8)
    base = LMConfig.model_validate({
        "model": {"dim": 16, "n_layers": 1, "n_heads": 2, "window_frames": 16, "n_text_tokens": 1, "max_seconds": 10.0},
        "micro_batch": 8, "lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 2, "steps": 20})
    cfg = ScalingConfig.model_validate({
        "sizes": [{"dim": 16, "n_layers": 1, "n_heads": 2}, {"dim": 32, "n_layers": 1, "n_heads": 2}],
        "steps": [10, 20, 40], "holdout": {"model": {"dim": 48, "n_layers": 1, "n_heads": 2}, "steps": 60},
        "codebooks": [2], "codebook_sizes": [0], "codebook_steps": [10, 40], "bootstrap": 10,
        "lm": {"nproc": 1, "eval_every": 0, "eval_windows": 16, "checkpoint_every": 0, "precision": "fp32"},
        "budgets": [1e9, 1e11]})
    out = tmp_path / "eval" / "scaling"
    metrics = run_scaling(cfg, base, tokens, out, tmp_path / "metrics.json")

    fit = json.loads((out / "fit.json").read_text())
    assert metrics["runs_trained"] == 9 and (out / "scaling.png").stat().st_size > 10_000
    runs = {r["name"]: r for r in fit["runs"]}
    for size in ("d16-L1", "d32-L1"):            # real training: more steps, lower valid loss
        assert runs[f"{size}-s40"]["loss"] < runs[f"{size}-s10"]["loss"] < runs[f"{size}-s10"]["unigram_loss"] + 0.5
    assert runs["k2-d16-L1-s40"]["num_codebooks"] == 2
    assert set(fit["codecs"]) == {"4", "2"} and fit["holdout"]["name"] == "d48-L1-s60"
    assert fit["holdout"]["relative_error"] == pytest.approx(
        abs(fit["holdout"]["predicted_loss"] - fit["holdout"]["measured_loss"]) / fit["holdout"]["measured_loss"])
    recs = fit["recommendations"]
    assert recs["1e+11"]["params"] >= recs["1e+09"]["params"] and recs["1e+11"]["tokens"] > recs["1e+09"]["tokens"]

    again = run_scaling(cfg, base, tokens, out, tmp_path / "metrics.json")
    assert again["runs_trained"] == 0 and again["runs_reused"] == 9
    assert again["alpha"] == pytest.approx(metrics["alpha"]) and again["beta"] == pytest.approx(metrics["beta"])
