"""Human ratings import: every malformed table is rejected whole, naming the file, row and problem."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from components.oraql.ratings import RatingsError, normalise_per_rater, read_pairwise, read_ratings

HEADER = "audio,rater,score,scale_min,scale_max\n"


@pytest.fixture
def folder(tmp_path):
    for name in ("a.wav", "b.wav", "c.wav"):
        sf.write(tmp_path / name, np.zeros(1600, dtype=np.float32), 16000)
    return tmp_path


def write(folder, text, name="ratings.csv"):
    path = folder / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("body, row, problem", [
    ("audio,rater,score,scale_max\na.wav,r1,3,5\n", None, "missing column(s) scale_min"),
    (HEADER + "a.wav,r1,3,1,5\nb.wav,r1,7,1,5\n", 2, "score 7 is off its scale [1, 5]"),
    (HEADER + "a.wav,r1,3,1,5\nmissing.wav,r1,3,1,5\n", 2, "unknown audio 'missing.wav'"),
    (HEADER + "a.wav,r1,3,1,5\nb.wav,r1,4,1,5\na.wav,r1,5,1,5\n", 3, "duplicate: rater 'r1' already rated 'a.wav' in row 1"),
    (HEADER + "a.wav,,3,1,5\n", 1, "empty rater"),
    (HEADER + "a.wav,r1,good,1,5\n", 1, "must be numbers"),
    (HEADER + "a.wav,r1,3,5,1\n", 1, "scale_min 5 is not below scale_max 1"),
])
def test_malformed_ratings_are_rejected_with_file_row_and_problem(folder, body, row, problem):
    path = write(folder, body)
    with pytest.raises(RatingsError) as err:
        read_ratings(path)
    assert (row, ) == tuple(r for r, p in err.value.problems if problem in p)[:1]
    message = str(err.value)
    assert str(path) in message and problem in message and "nothing imported" in message
    assert (f"row {row}" if row else "header") in message


def test_every_problem_is_reported_not_just_the_first(folder):
    path = write(folder, HEADER + "a.wav,r1,9,1,5\nnope.wav,r1,3,1,5\nb.wav,r1,3,1,5\n")
    with pytest.raises(RatingsError) as err:
        read_ratings(path)
    assert [r for r, _ in err.value.problems] == [1, 2]


def test_unreadable_and_missing_tables(folder):
    with pytest.raises(RatingsError, match="file not found"):
        read_ratings(folder / "absent.csv")
    (folder / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(RatingsError, match="not a readable parquet"):
        read_ratings(folder / "bad.parquet")


def test_per_rater_normalisation_removes_a_raters_offset(folder):
    # r2 rates everything 2 points above r1 on the same scale: after normalisation they agree
    rows = [("a.wav", "r1", 1), ("b.wav", "r1", 2), ("c.wav", "r1", 3),
            ("a.wav", "r2", 3), ("b.wav", "r2", 4), ("c.wav", "r2", 5)]
    table = pd.DataFrame([{"audio": a, "rater": r, "u": (s - 1) / 4} for a, r, s in rows])
    v = normalise_per_rater(table)
    assert np.allclose(v[:3], v[3:])                            # same audio, same label, whoever rated it
    assert not np.allclose(table["u"][:3], table["u"][3:])      # ...which the raw scores were not
    path = write(folder, HEADER + "".join(f"{a},{r},{s},1,5\n" for a, r, s in rows))
    rated = {r.path.name: r for r in read_ratings(path)}
    assert rated["a.wav"].label < rated["b.wav"].label < rated["c.wav"].label
    assert all(r.n_ratings == 2 for r in rated.values())
    assert rated["b.wav"].label == pytest.approx(table["u"].mean())


def test_split_follows_the_piece(folder):
    path = write(folder, "audio,rater,score,scale_min,scale_max,piece\n"
                         "a.wav,r1,3,1,5,p1\nb.wav,r1,4,1,5,p1\nc.wav,r1,2,1,5,p2\n")
    rated = {r.path.name: r for r in read_ratings(path)}
    assert rated["a.wav"].split == rated["b.wav"].split


@pytest.mark.parametrize("body, row, problem", [
    ("audio_a,audio_b,choice\na.wav,b.wav,a\n", None, "missing column(s) rater"),
    ("audio_a,audio_b,rater,choice\na.wav,b.wav,r1,c\n", 1, "choice 'c' must be 'a' or 'b'"),
    ("audio_a,audio_b,rater,choice\na.wav,a.wav,r1,a\n", 1, "are the same file"),
    ("audio_a,audio_b,rater,choice\na.wav,x.wav,r1,a\n", 1, "unknown audio 'x.wav'"),
    ("audio_a,audio_b,rater,choice\na.wav,b.wav,r1,a\nb.wav,a.wav,r1,b\n", 2, "duplicate"),
])
def test_malformed_pairwise_tables_are_rejected(folder, body, row, problem):
    path = write(folder, body, "ab.csv")
    with pytest.raises(RatingsError) as err:
        read_pairwise(path)
    assert str(path) in str(err.value) and problem in str(err.value)
    assert (f"row {row}" if row else "header") in str(err.value)


def test_pairwise_choices_put_the_preferred_audio_first(folder):
    path = write(folder, "audio_a,audio_b,rater,choice\na.wav,b.wav,r1,b\nb.wav,c.wav,r2,A\n", "ab.csv")
    prefs = read_pairwise(path)
    assert [(p.better.name, p.worse.name) for p in prefs] == [("b.wav", "a.wav"), ("b.wav", "c.wav")]
