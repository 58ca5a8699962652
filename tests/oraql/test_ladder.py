"""The ladder: labels fall monotonically with strength, every version stays on its piece's split."""

import numpy as np
import pytest

from components.oraql import degrade, ladder
from components.oraql.config import KINDS, SIGNAL_KINDS, STRUCTURAL_KINDS, OraqlConfig
from tests.oraql.synth import curated_folder, melody

SR = 16_000


class Row:
    clip_id, piece_id, split = "c", "p", "train"


def labels_by_strength(kind: str, cfg: OraqlConfig, seed: int) -> list[float]:
    audio = melody(seed, seconds=10.0, sr=SR)
    n = int(cfg.clip_seconds * SR)
    clean = degrade._clean(audio, 0, n)
    fn = degrade.SIGNAL.get(kind) or degrade.STRUCTURAL[kind]
    rungs = [(kind, s, fn(audio, 0, n, s, np.random.default_rng([seed, 7]), SR)) for s in cfg.ladder.strengths(kind)]
    return [item.overall for item in ladder.label_rungs(Row(), rungs, clean, SR, cfg)]


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "codec"])
def test_labels_fall_monotonically_with_strength(kind):
    cfg = OraqlConfig()
    for seed in range(3):
        labels = labels_by_strength(kind, cfg, seed)
        assert all(a > b for a, b in zip(labels, labels[1:])), (kind, seed, labels)
        assert all(0.0 < l < 1.0 for l in labels)


def test_signal_labels_come_from_the_measure_and_structural_from_strength():
    cfg = OraqlConfig()
    audio = melody(0, sr=SR)
    n = int(cfg.clip_seconds * SR)
    clean = degrade._clean(audio, 0, n)
    items = ladder.label_rungs(Row(), [("real", 0.0, clean), ("noise", 10.0, degrade.noise(audio, 0, n, 10.0, np.random.default_rng(0), SR)),
                                       ("loop", 1.0, degrade.loop(audio, 0, n, 1.0, np.random.default_rng(0), SR))], clean, SR, cfg)
    real, noisy, looped = items
    assert real.overall == 1.0 and real.mel_distance == 0.0
    assert noisy.fidelity == pytest.approx(np.exp(-noisy.mel_distance / cfg.fidelity_from_mel)) and noisy.coherence == 1.0
    assert looped.fidelity == 1.0 and looped.coherence == pytest.approx(cfg.coherence_floor)
    assert not np.allclose(degrade.shuffle(audio, 0, n, 1.0, np.random.default_rng(0), SR), clean)


def test_time_stretch_keeps_pitch_and_changes_length():
    tone = np.sin(2 * np.pi * 440 * np.arange(SR * 2) / SR).astype(np.float32)
    fast = degrade.time_stretch(tone, 1.5)
    assert abs(len(fast) - len(tone) / 1.5) < 0.05 * len(tone)
    spectrum = np.abs(np.fft.rfft(fast[2000:-2000]))
    assert abs(np.argmax(spectrum) * SR / len(fast[2000:-2000]) - 440) < 5


def test_a_tempo_jump_near_a_short_clips_end_keeps_the_crop_length():
    # a 5 s crop of a 2 s clip: what follows the jump point is (almost) empty, and must not crash
    short = np.sin(2 * np.pi * 440 * np.arange(SR * 2) / SR).astype(np.float32)
    out = degrade.tempo_jump(short, 0, 5 * SR, 1.0, np.random.default_rng(0), SR)
    assert len(out) == 5 * SR and np.isfinite(out).all()
    assert len(degrade.time_stretch(short[:100], 1.6)) == 62


def test_ladder_from_a_curated_folder_splits_by_piece(tmp_path):
    curated = curated_folder(tmp_path / "curated", {"train": 3, "valid": 1, "test": 2})
    cfg = OraqlConfig(sources={"train": 3, "valid": 1, "test": 2})
    items = ladder.build_ladder(curated, cfg)
    table = ladder.items_table(items)
    assert set(table["kind"]) == {"real", *SIGNAL_KINDS, *STRUCTURAL_KINDS} - {"codec"}
    assert table.groupby("source")["split"].nunique().max() == 1
    for _, g in table.groupby("piece_id"):
        assert g["split"].nunique() == 1 and g["split"].iloc[0] == g["piece_id"].iloc[0].split("-")[0]
    assert table.groupby("split")["source"].nunique().to_dict() == {"train": 3, "valid": 1, "test": 2}
    per_source = len(table) // table["source"].nunique()
    assert per_source == 1 + sum(len(cfg.ladder.strengths(k)) for k in KINDS if k != "codec")


def test_generation_labels_order_real_late_early():
    early = ladder.generation_label(None, 6.1, 6.93, 0.2, 0.8)
    late = ladder.generation_label(6.1, 6.1, 6.93, 0.2, 0.8)
    last = ladder.generation_label(6.2, 6.1, 6.93, 0.2, 0.8)
    assert early < last < late < 1.0


def test_a_split_with_fewer_clips_than_asked_gives_further_crops(tmp_path):
    import pandas as pd

    from components.oraql.ladder import choose_sources

    curated = curated_folder(tmp_path / "curated", {"train": 2, "test": 1}, clips_per_piece=2)
    manifest = pd.read_parquet(curated / "manifest.parquet")
    sources = choose_sources(manifest, {"train": 9, "test": 2}, seed=0)
    train = sources[sources["split"] == "train"]
    assert len(train) == 9 and sorted(train["crop"].tolist()) == [0] * 4 + [1] * 4 + [2]
    assert train.groupby("clip_id").size().max() == 3 and set(train["piece_id"]) == {"train-piece0", "train-piece1"}
    items = ladder.build_ladder(curated, OraqlConfig(sources={"train": 5, "test": 2}))
    table = ladder.items_table(items)
    assert table["item_id"].is_unique and table["source"].nunique() == 7
    assert (table.groupby(table["source"].str.split("#").str[0])["split"].nunique() == 1).all()
