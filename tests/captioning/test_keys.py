"""Key parsing, Krumhansl–Schmuckler estimation on synthesised cadences, MIREX relations."""

import numpy as np
import pytest

from components.captioning.analysis import analyse_audio
from components.captioning.keys import ALL_KEYS, KEY_PROFILES, Key, estimate_key, key_relation, mirex_score, parse_key

from .synth import SR, cadence, gm_cadence


@pytest.mark.parametrize("tonic, mode", [(0, "major"), (7, "major"), (10, "major"), (4, "major"),
                                         (9, "minor"), (2, "minor"), (6, "minor"), (3, "minor")])
def test_cadence_key_is_found(tonic, mode):
    features = analyse_audio(cadence(tonic, mode, bpm=90), SR, with_metre=False)
    assert (features.key, features.mode) == (Key(tonic, mode).tonic_name, mode)
    assert features.key_correlation > 0.5


@pytest.mark.parametrize("profile", sorted(KEY_PROFILES))
def test_every_profile_finds_all_24_keys_from_pitch_classes(profile):
    # pitch-class histogram of the cadence itself (chord tones, bass doubled), no audio in between
    for key in ALL_KEYS:
        pcp = np.zeros(12)
        for chord in ((0, 4, 7), (5, 9, 0), (7, 11, 2), (0, 4, 7)) if key.mode == "major" else \
                ((0, 3, 7), (5, 8, 0), (7, 11, 2), (0, 3, 7)):
            for degree in (*chord, chord[0]):
                pcp[(key.tonic + degree) % 12] += 1
        assert estimate_key(pcp, profile).key == key


def test_rendered_instrument_key():
    features = analyse_audio(gm_cadence(2, "minor", 96, program=19), SR, with_metre=False)   # church organ
    assert (features.key, features.mode) == ("D", "minor")


def test_silence_has_no_key():
    assert estimate_key(np.zeros((12, 100))) is None
    features = analyse_audio(np.zeros(SR * 5, dtype=np.float32), SR)
    assert features.key is None and features.tempo_bpm is None


@pytest.mark.parametrize("text, mode, expected", [
    ("B-", None, Key(10, "major")), ("b-", None, Key(10, "minor")), ("f#", None, Key(6, "minor")),
    ("Bb major", None, Key(10, "major")), ("B-flat minor", None, Key(10, "minor")), ("Bbm", None, Key(10, "minor")),
    ("G:maj", None, Key(7, "major")), ("Am", None, Key(9, "minor")), ("E♭ major", None, Key(3, "major")),
    ("C", "minor", Key(0, "minor")), ("Cb", None, Key(11, "major")), ("E#", None, Key(5, "major")),
    ("", None, None), (None, "major", None), ("H", None, None), (float("nan"), None, None),
])
def test_parse_key(text, mode, expected):
    assert parse_key(text, mode) == expected


def test_key_names_use_conventional_spelling():
    assert Key(10, "major").name == "Bb major" and Key(6, "minor").name == "F# minor"
    assert Key(1, "major").tonic_name == "Db" and Key(8, "minor").tonic_name == "G#"


def test_mirex_relations():
    c = Key(0, "major")
    assert key_relation(Key(0, "major"), c) == "exact" and mirex_score(Key(0, "major"), c) == 1.0
    assert key_relation(Key(7, "major"), c) == "fifth" and mirex_score(Key(7, "major"), c) == 0.5
    assert key_relation(Key(5, "major"), c) == "other"          # subdominant earns nothing (MIREX/mir_eval)
    assert key_relation(Key(9, "minor"), c) == "relative" and mirex_score(Key(9, "minor"), c) == 0.3
    assert key_relation(Key(0, "minor"), c) == "parallel" and mirex_score(Key(0, "minor"), c) == 0.2
    a = Key(9, "minor")
    assert key_relation(Key(0, "major"), a) == "relative"
    assert key_relation(Key(4, "minor"), a) == "fifth"
    assert key_relation(Key(4, "major"), a) == "other"
