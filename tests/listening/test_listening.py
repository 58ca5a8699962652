"""The listening room's record: votes refused unless well-formed, the statistics, ORAQL's import of the
export, and the `listeners_prefer` promotion gate driven by simulated listeners (scripted choices, not people)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import soundfile as sf
import yaml

from components.listening.export import export_tables
from components.listening.statistics import liked_by_best_of, liked_ratio, preference
from components.listening.votes import VoteError, VoteStore
from tests.registry.conftest import project  # noqa: F401 - the throwaway project fixture


def add_pair(store, audio_dir, version_a="lyra@v0.0.2", version_b="lyra@v0.0.1", best_of=(1, 1), prompt="calm piano"):
    names = []
    for side in "ab":
        name = f"{random.Random().getrandbits(48):012x}.wav"
        sf.write(audio_dir / name, 0.1 * np.sin(np.arange(8000) / 10.0), 16000)
        names.append(name)
    return store.add_pair(kind="versions", prompt=prompt, seed=3, seconds=0.5,
                          a={"system": "candidate", "version": version_a, "best_of": best_of[0], "audio": names[0]},
                          b={"system": "model", "version": version_b, "best_of": best_of[1], "audio": names[1]})


@pytest.fixture
def store(tmp_path):
    (tmp_path / "audio").mkdir()
    return VoteStore.open(str(tmp_path / "votes.sqlite"))


def simulated_listeners(store, audio_dir, candidate: str, holder: str, n: int, p_candidate: float, seed: int = 0):
    """n scripted judgements (simulated, not people): each picks the candidate with probability p_candidate."""
    rng = random.Random(seed)
    for i in range(n):
        flip = rng.random() < 0.5                        # which side the candidate was played on
        a, b = (candidate, holder) if flip else (holder, candidate)
        pair = add_pair(store, audio_dir, a, b)
        wants_candidate = rng.random() < p_candidate
        store.played(pair, f"simulated-{i}")
        store.vote(pair, f"simulated-{i}", "a" if wants_candidate == flip else "b", rng.randint(1, 5), rng.randint(1, 5))


def test_a_vote_names_a_known_pair_and_a_choice_and_nothing_else(store, tmp_path):
    pair = add_pair(store, tmp_path / "audio")
    with pytest.raises(VoteError, match="it was not played to this listener") as unplayed:
        store.vote(pair, "l1", "a")
    assert unplayed.value.status == 403
    store.played(pair, "l1")
    with pytest.raises(VoteError, match="choice: 'c' must be 'a' or 'b'"):
        store.vote(pair, "l1", "c")
    with pytest.raises(VoteError, match="rating_a: 6 must be a whole number from 1 to 5") as bad:
        store.vote(pair, "l1", "a", rating_a=6)
    assert bad.value.status == 400
    with pytest.raises(VoteError, match="no pair 'feedbeef'") as unknown:
        store.vote("feedbeef", "l1", "a")
    assert unknown.value.status == 404
    store.vote(pair, "l1", "a", rating_a=4)
    with pytest.raises(VoteError, match="judged it already") as twice:
        store.vote(pair, "l1", "b")
    assert twice.value.status == 409
    [row] = store.judgements()
    assert (row["listener"], row["choice"], row["rating_a"], row["rating_b"]) == ("l1", "a", 4, None)
    assert (row["version_a"], row["version_b"], row["prompt"], row["seed"]) == ("lyra@v0.0.2", "lyra@v0.0.1", "calm piano", 3)
    assert row["at"] is not None


def test_preference_is_an_exact_one_sided_interval_and_ignores_unequal_pairs(store, tmp_path):
    simulated_listeners(store, tmp_path / "audio", "lyra@v0.0.2", "lyra@v0.0.1", 40, p_candidate=0.85)
    unequal = add_pair(store, tmp_path / "audio", best_of=(8, 1))   # best-of-8 vs best-of-1: not a version verdict
    same = add_pair(store, tmp_path / "audio", "lyra@v0.0.2", "lyra@v0.0.2")   # one version on both sides
    for pair in (unequal, same):
        store.played(pair, "another")
        store.vote(pair, "another", "a")
    strong = preference(store.judgements(), "lyra@v0.0.2", "lyra@v0.0.1")
    assert strong.n == 40 and strong.listeners == 40 and strong.lower > 0.5 and strong.p_value < 0.01
    from scipy import stats

    assert strong.lower == pytest.approx(stats.binomtest(strong.wins, strong.n).proportion_ci(confidence_level=0.90).low)
    even = VoteStore.open(str(tmp_path / "even.sqlite"))
    simulated_listeners(even, tmp_path / "audio", "lyra@v0.0.2", "lyra@v0.0.1", 40, p_candidate=0.5, seed=1)
    assert preference(even.judgements(), "lyra@v0.0.2", "lyra@v0.0.1").lower < 0.5


def test_liked_by_best_of_counts_ratings_per_arm_with_intervals(store, tmp_path):
    for i in range(10):
        pair = add_pair(store, tmp_path / "audio", "lyra@v0.0.1", "lyra@v0.0.1", best_of=(8, 1))
        store.played(pair, f"l{i}")
        store.vote(pair, f"l{i}", "a" if i < 7 else "b", rating_a=5 if i < 6 else 2, rating_b=4 if i < 3 else 1)
    arms = {a["best_of"]: a for a in liked_by_best_of(store.judgements())}
    assert {a["version"] for a in arms.values()} == {"lyra@v0.0.1"}
    assert (arms[8]["liked"], arms[8]["rated"], arms[1]["liked"]) == (6, 10, 3)
    assert arms[8]["win_rate"] == 0.7 and arms[8]["p_liked_ci95"][0] < 0.6 < arms[8]["p_liked_ci95"][1]
    [ratio] = liked_ratio(list(arms.values()))
    assert ratio["ratio"] == pytest.approx(2.0) and ratio["ci95"][0] < 1.0 < 2.0 < ratio["ci95"][1]   # n = 10: wide
    from components.listening.report import render

    page = render(store.judgements(), {"model": "lyra@v0.0.1"})
    assert "P(liked | best-of-n) / P(liked | best-of-1)" in page and "<td>2.00</td>" in page
    [everyone] = liked_ratio([{**arms[1], "liked": 3, "rated": 3}, {**arms[8], "liked": 5, "rated": 5}])
    assert everyone["ratio"] == 1.0 and everyone["ci95"][0] < 0.9 and everyone["ci95"][1] > 1.1   # not a point


def test_the_export_is_what_oraql_imports(store, tmp_path):
    from components.oraql.ratings import read_pairwise, read_ratings

    simulated_listeners(store, tmp_path / "audio", "lyra@v0.0.2", "lyra@v0.0.1", 6, p_candidate=0.8)
    written = export_tables(store.judgements(), tmp_path / "audio", tmp_path / "export")
    assert written == {"pairwise.csv": 6, "ratings.csv": 12}
    assert len(read_pairwise(tmp_path / "export" / "pairwise.csv")) == 6
    assert len(read_ratings(tmp_path / "export" / "ratings.csv")) == 12


def test_listeners_prefer_gate_passes_and_refuses_with_its_numbers_in_the_audit_log(project, monkeypatch):
    """Simulated listeners (scripted, not people) drive the gate both ways."""
    from components.registry.promote import promote
    from tests.registry.test_promotion import audit, promoted_codec

    params = project.root / "params.yaml"
    raw = yaml.safe_load(params.read_text())
    raw["tiny"]["registry"]["models"]["omnicodec"]["listeners_prefer"] = {"production": {"min_judgements": 30}}
    raw["tiny"]["listening"] = {"database": "listening/votes.sqlite", "audio_dir": "listening/audio"}
    params.write_text(yaml.safe_dump(raw))
    reg = promoted_codec(project)                          # v0.0.1 holds production (no holder: nothing to prefer)
    project.train_codec(seed=1, valid_mel_distance=0.89)
    reg.register("omnicodec")
    assert promote(reg, "omnicodec", "v0.0.2", "staging", "retrained").outcome == "promoted"
    store = VoteStore.open("listening/votes.sqlite", project.root)
    audio = project.root / "listening" / "audio"
    audio.mkdir(parents=True)

    simulated_listeners(store, audio, "omnicodec@v0.0.2", "omnicodec@v0.0.1", 12, p_candidate=0.9)
    few = promote(reg, "omnicodec", "v0.0.2", "production", "listeners like it")
    assert few.outcome == "refused" and "12 judgements by 12 listeners" in few.failed[0].detail
    assert "needs 30 by 5" in few.failed[0].detail

    simulated_listeners(store, audio, "omnicodec@v0.0.2", "omnicodec@v0.0.1", 28, p_candidate=0.5, seed=2)
    undecided = promote(reg, "omnicodec", "v0.0.2", "production", "listeners like it")
    assert undecided.outcome == "refused" and undecided.failed[0].name == "listeners_prefer"
    assert "not preferred" in undecided.failed[0].detail

    simulated_listeners(store, audio, "omnicodec@v0.0.2", "omnicodec@v0.0.1", 40, p_candidate=0.95, seed=3)
    decision = promote(reg, "omnicodec", "v0.0.2", "production", "listeners like it")
    assert decision.outcome == "promoted", decision.summary()
    gate = next(g for g in audit(project)[-1]["gates"] if g["name"] == "listeners_prefer")
    assert gate["passed"] and gate["numbers"]["n"] == 80 and gate["numbers"]["lower"] > 0.5
    assert json.dumps(gate)                                  # numbers are plain JSON in the audit line
