"""The sweep's machinery: codebook variants, parameter counts, run keys and reuse, the CLI."""

import json

import numpy as np
import pytest

from components.lyra.config import LMConfig, LyraModelConfig
from components.scaling import runs as runs_module
from components.scaling.codebooks import bitrate_kbps, truncated_tokens
from components.scaling.config import ScalingConfig, SweepModel
from components.scaling.fit import ScalingLaw
from components.scaling.runs import RunSpec, run_key, train_run
from components.scaling.sweep import frames_trained, non_embedding_params, plan_runs
from components.tokens.dataset import TokenDataset
from components.tokens.shards import read_meta
from tests.lyra.synthetic import write_synthetic_tokens


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokens")
    write_synthetic_tokens(root, pieces_per_class=6)
    return root


def test_fewer_codebooks_keep_exactly_the_first_k_levels(tokens, tmp_path):
    two = truncated_tokens(tokens, 2, tmp_path)
    full, cut = TokenDataset(tokens, split=None), TokenDataset(two, split=None)
    assert cut.num_codebooks == 2 and len(cut) == len(full)
    for i in range(len(full)):
        np.testing.assert_array_equal(cut.codes(i), full.codes(i)[:2])
    assert bitrate_kbps(read_meta(two)) == pytest.approx(bitrate_kbps(read_meta(tokens)) / 2)
    assert truncated_tokens(tokens, 2, tmp_path) == two             # built once
    assert truncated_tokens(tokens, 4, tmp_path) == tokens          # all codebooks: the folder itself
    with pytest.raises(ValueError, match="cannot keep 5"):
        truncated_tokens(tokens, 5, tmp_path)


def test_non_embedding_params_leave_out_the_vocabulary_matrices(tokens):
    import torch

    from components.lyra.model import build_model

    meta = read_meta(tokens)
    cfg = LyraModelConfig(dim=32, n_layers=2, n_heads=2)
    model = build_model(cfg, num_codebooks=4, codebook_size=int(meta["codebook_size"]), frame_rate=meta["frame_rate"],
                        sample_rate=meta["sample_rate"], text_dim=meta["text_dim"])
    total = sum(p.numel() for p in model.parameters())
    vocab = model.codes_embed.weight.numel() + model.heads.weight.numel()
    assert non_embedding_params(cfg, meta) == total - vocab
    # the transformer blocks alone are 12 L d^2 (+ norms): N grows with width and depth
    assert non_embedding_params(LyraModelConfig(dim=64, n_layers=2, n_heads=2), meta) > non_embedding_params(cfg, meta)
    assert non_embedding_params(LyraModelConfig(dim=32, n_layers=4, n_heads=2), meta) - non_embedding_params(cfg, meta) \
        == pytest.approx(2 * 12 * 32 ** 2, rel=0.02)
    del torch


def test_the_plan_covers_the_grid_the_holdout_and_the_codebook_runs(tokens, tmp_path):
    cfg = ScalingConfig(sizes=[SweepModel(dim=16, n_layers=1, n_heads=2), SweepModel(dim=32, n_layers=1, n_heads=2)],
                        steps=[20, 40, 80], codebook_sizes=[1], codebook_steps=[20, 80])
    base = LMConfig(micro_batch=4)
    specs = plan_runs(cfg, base, tokens, {2: truncated_tokens(tokens, 2, tmp_path)})
    assert [s.role for s in specs].count("sweep") == 6
    assert [s.role for s in specs].count("codebooks") == 2
    holdout = next(s for s in specs if s.role == "holdout")
    assert holdout.lm.model.dim == 128 and holdout.lm.steps == 360
    for s in specs:
        assert s.lm.warmup_steps == max(1, round(0.1 * s.lm.steps)) and s.lm.nproc == 1 and s.lm.eval_every == 0
    assert frames_trained(specs[0].lm) == 20 * 4 * 1 * 128
    assert len({run_key(s) for s in specs}) == len(specs)          # every run its own folder
    with pytest.raises(ValueError, match="must not set 'steps'"):
        ScalingConfig(lm={"steps": 10})


def test_a_finished_run_is_reused_and_never_launched_again(tokens, tmp_path, monkeypatch):
    spec = RunSpec("d16", "sweep", LMConfig(steps=40, warmup_steps=4), tokens, 4)
    folder = tmp_path / run_key(spec)
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "training.json").write_text("{}")
    (folder / "metrics.json").write_text(json.dumps({"val_loss": 2.5}))

    def no_launch(*a, **k):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(runs_module.subprocess, "Popen", no_launch)
    result = train_run(spec, tmp_path, threads=1, devices=None, log=runs_module.logging.getLogger("t"))
    assert result.reused and result.metrics["val_loss"] == 2.5
    # a change to the run's config is a different run
    other = RunSpec("d16", "sweep", LMConfig(steps=41, warmup_steps=4), tokens, 4)
    assert run_key(other) != run_key(spec)


def test_runs_never_inherit_the_sweeps_pipes_channel(monkeypatch):
    monkeypatch.setenv("DAGSTER_PIPES_CONTEXT", "x")
    monkeypatch.setenv("DAGSTER_PIPES_MESSAGES", "y")
    monkeypatch.setenv("WORLD_SIZE", "2")
    env = runs_module.run_env(threads=1, devices=[3])
    assert not any(k.startswith("DAGSTER_PIPES_") for k in env) and "WORLD_SIZE" not in env
    assert env["OMP_NUM_THREADS"] == "1" and env["CUDA_VISIBLE_DEVICES"] == "3"


def _write_fit(folder, law: ScalingLaw):
    folder.mkdir(parents=True)
    runs = [{"N": 1e5, "D": 1e6}, {"N": 4e5, "D": 4e6}]
    (folder / "fit.json").write_text(json.dumps({
        "num_codebooks": 4, "runs": runs,
        "codecs": {"4": {"bitrate_kbps": 2.0, "law": law.as_dict()},
                   "2": {"bitrate_kbps": 1.0, "law": {**law.as_dict(), "B": law.B * 4}}}}))


def test_recommend_cli_grows_the_model_with_the_budget(tmp_path, capsys):
    from components.cli import main

    _write_fit(tmp_path / "fit", ScalingLaw(E=1.69, A=406.4, alpha=0.34, B=410.7, beta=0.28))

    def recommend(*extra):
        assert main(["scaling", "recommend", "--fit", str(tmp_path / "fit"), "--json", *extra]) == 0
        return json.loads(capsys.readouterr().out)

    small, big = recommend("--flops", "1e18"), recommend("--flops", "1e21")
    assert big["params"] > small["params"] and big["tokens"] > small["tokens"]
    assert 6 * small["params"] * small["tokens"] == pytest.approx(1e18, rel=1e-6)
    two = recommend("--flops", "1e18", "--codebooks", "2")
    assert two["num_codebooks"] == 2 and two["params"] < small["params"]
    assert main(["scaling", "recommend", "--fit", str(tmp_path / "fit"), "--flops", "1e18"]) == 0
    assert "non-embedding parameters" in capsys.readouterr().out
    assert main(["scaling", "recommend", "--fit", str(tmp_path / "nowhere"), "--flops", "1e18"]) == 2
    assert "fit.json not found" in capsys.readouterr().err
    assert main(["scaling", "recommend", "--fit", str(tmp_path / "fit"), "--flops", "1e18", "--codebooks", "3"]) == 2
    assert "no law for 3 codebooks" in capsys.readouterr().err
