"""`lyra oraql train` end to end on a synthetic curated folder (no codec, no Lyra): outputs, splits, report."""

import json

import pandas as pd

from components.cli import main as lyra
from tests.oraql.synth import curated_folder

SETTINGS = ("sources={train: 4, valid: 2, test: 2}", "steps=60", "eval_every=30", "checkpoint_every=30", "batch_size=16",
            "bootstrap=50", "model.channels=[16, 32]", "model.head_hidden=16", "threads=1")


def test_train_stage_writes_model_report_and_keeps_the_held_out_type_out(tmp_path):
    curated = curated_folder(tmp_path / "curated", {"train": 4, "valid": 2, "test": 2}, clips_per_piece=1)
    out, metrics_path = tmp_path / "oraql", tmp_path / "metrics.json"
    args = ["oraql", "train", "--curated", str(curated), "--out", str(out), "--metrics", str(metrics_path)]
    assert lyra([*args, *[x for s in SETTINGS for x in ("--set", s)]]) == 0
    for name in ("config.json", "model.safetensors", "evaluation.json", "items.parquet", "training.json",
                 "agreement.png", "lineage.json"):
        assert (out / name).is_file(), name
    assert not (tmp_path / ".oraql.checkpoints").exists()          # the resumable state is gone once published
    metrics = json.loads(metrics_path.read_text())
    for key in ("spearman_clip", "spearman_system", "pairwise_accuracy", "held_out_spearman"):
        lo, hi = metrics[f"{key}_ci95"]
        assert lo <= metrics[key] <= hi, key
    assert metrics["held_out_type"] == "clipping" and metrics["scoring_seconds_per_second_per_core"] > 0
    items = pd.read_parquet(out / "items.parquet")
    assert set(items.groupby("piece_id")["split"].nunique()) == {1}
    assert metrics["n_train_items"] == int(((items["split"] == "train") & (items["kind"] != "clipping")).sum())
    assert metrics["n_test_items"] == int((items["split"] == "test").sum())
    report = json.loads((out / "evaluation.json").read_text())
    assert report["test"]["held_out_n"] == int(((items["split"] == "test") & (items["kind"] == "clipping")).sum()) > 0
    assert "untrained" in report and "valid" in report


def test_train_stage_explains_a_folder_without_manifest(tmp_path, capsys):
    assert lyra(["oraql", "train", "--curated", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no manifest.parquet" in capsys.readouterr().err


def test_a_killed_stage_reuses_its_items_and_checkpoint(tmp_path, monkeypatch):
    from components.config import parse_overrides
    from components.oraql import train
    from components.oraql.config import OraqlConfig

    curated = curated_folder(tmp_path / "curated", {"train": 3, "valid": 1, "test": 1}, clips_per_piece=1)
    cfg = OraqlConfig.model_validate(parse_overrides(SETTINGS))
    built, real_build, real_fit = [], train.build_items, train.fit
    monkeypatch.setattr(train, "build_items", lambda *a, **k: built.append(1) or real_build(*a, **k))
    monkeypatch.setattr(train, "fit", lambda *a, **k: real_fit(*a, **{**k, "stop_after": 45}))
    try:
        train.run_train_stage(cfg, curated, tmp_path / "oraql")
    except train.Killed:
        pass
    assert not (tmp_path / "oraql").exists() and (tmp_path / ".oraql.checkpoints" / "state.pt").is_file()
    monkeypatch.setattr(train, "fit", real_fit)
    resumed = train.run_train_stage(cfg, curated, tmp_path / "oraql")
    assert built == [1]                                     # the ladder was not built again
    monkeypatch.setattr(train, "build_items", real_build)
    fresh = train.run_train_stage(cfg, curated, tmp_path / "fresh")
    for key in ("spearman_clip", "pairwise_accuracy", "held_out_spearman", "selected_step"):
        assert resumed[key] == fresh[key], key              # same final state as an uninterrupted run


def test_human_ratings_and_choices_join_the_training_set(tmp_path):
    import soundfile as sf

    from tests.oraql.synth import SR, melody

    curated = curated_folder(tmp_path / "curated", {"train": 3, "valid": 1, "test": 1}, clips_per_piece=1)
    rated = tmp_path / "rated"
    rated.mkdir()
    for i in range(4):
        sf.write(rated / f"r{i}.wav", melody(50 + i, 4.0), SR)
    (rated / "ratings.csv").write_text("audio,rater,score,scale_min,scale_max,split\n" + "".join(
        f"r{i}.wav,{rater},{s},1,5,train\n" for i in range(4) for rater, s in (("ann", i + 1), ("bob", min(5, i + 2)))))
    (rated / "ab.csv").write_text("audio_a,audio_b,rater,choice,split\nr0.wav,r3.wav,ann,b,train\nr1.wav,r2.wav,bob,b,train\n")
    out, metrics_path = tmp_path / "oraql", tmp_path / "m.json"
    args = ["oraql", "train", "--curated", str(curated), "--out", str(out), "--metrics", str(metrics_path),
            "--set", f"ratings={rated / 'ratings.csv'}", "--set", f"pairwise={rated / 'ab.csv'}"]
    assert lyra([*args, *[x for s in SETTINGS for x in ("--set", s)]]) == 0
    items = pd.read_parquet(out / "items.parquet")
    human = items[items["kind"] == "human"].sort_values("item_id")
    assert len(human) == 4 and human["overall"].is_monotonic_increasing      # r0 < r1 < r2 < r3 after normalising
    assert json.loads(metrics_path.read_text())["n_pairs_human"] == 2
