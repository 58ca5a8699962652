"""Tags: metadata parsing, which source wins, bucket words, style look-ups, config checks."""

import json
import math

import pytest

from components.captioning.analysis import AudioFeatures
from components.captioning.config import CaptionConfig
from components.captioning.style import composer_and_era, form_of, instrument_name
from components.captioning.tags import bucket, metadata_of, resolve_tags

AUDIO = AudioFeatures(duration_s=10.0, tempo_bpm=118.0, n_beats=19, key="E", mode="minor", key_correlation=0.8,
                      key_margin=0.1, metre="triple", metre_strength=0.5, loudness_lufs=-23.0, rms_dbfs=-25.0,
                      brightness_hz=2000.0, onset_rate=4.0)


def test_metadata_of_drops_missing_values_and_reads_meta_json():
    row = {"clip_id": "a", "key": "G", "mode": float("nan"), "tempo_bpm": 80.0, "composer": None, "meter": "",
           "meta": json.dumps({"n_parts": 4, "composer": "bach", "nested": {"x": 1}})}
    meta = metadata_of(row)
    assert meta == {"key": "G", "tempo_bpm": 80.0, "n_parts": 4, "composer": "bach"}
    assert metadata_of({"meta": "not json"}) == {}


def test_metadata_wins_where_known_audio_fills_the_rest():
    tags = resolve_tags("a", {"tempo_bpm": 80, "key": "g", "meter": "3/4", "instrument": "Piano"}, AUDIO,
                        CaptionConfig())
    assert (tags.tempo_bpm, tags.tempo_source) == (80.0, "metadata")
    assert (tags.key, tags.mode, tags.key_source) == ("G", "minor", "metadata")
    assert (tags.meter, tags.instrument) == ("3/4", "piano")
    assert tags.audio["tempo_bpm"] == 118.0 and tags.metadata["tempo_bpm"] == 80      # both kept
    bare = resolve_tags("b", {}, AUDIO, CaptionConfig())
    assert (bare.tempo_bpm, bare.tempo_source, bare.key, bare.mode) == (118.0, "audio", "E", "minor")
    assert bare.meter is None                                   # the audio metre guess is off by default
    assert resolve_tags("c", {}, AUDIO, CaptionConfig(audio_metre_in_captions=True)).meter == "triple"
    audio_only = resolve_tags("d", {"tempo_bpm": 80}, AUDIO, CaptionConfig(prefer_metadata=False))
    assert audio_only.tempo_source == "audio"


def test_words_come_from_buckets():
    tags = resolve_tags("a", {}, AUDIO, CaptionConfig())
    assert (tags.tempo_word, tags.brightness_word, tags.energy_word, tags.loudness_word) == \
        ("brisk", "bright", "lively", "moderate")
    assert bucket(66.0, [66.0, 84.0], ["slow", "mid", "fast"]) == "mid"     # edges belong to the upper bucket
    assert bucket(math.nan, [1.0], ["a", "b"]) is None and bucket(None, [1.0], ["a", "b"]) is None


@pytest.mark.parametrize("composer, collection, expected", [
    ("J.S. Bach", None, ("Bach", "Baroque")), (None, "palestrina", ("Palestrina", "Renaissance")),
    ("Scott Joplin", None, ("Scott Joplin", "ragtime")), (None, "oneills1850", (None, "Irish folk")),
    ("Traditional", "folk", (None, "folk")), ("Hildegard", None, ("Hildegard", None)), (None, None, (None, None)),
])
def test_composer_and_era(composer, collection, expected):
    assert composer_and_era(composer, collection) == expected


def test_forms_and_instruments():
    assert form_of("The Kesh Jig", None, None) == "jig"
    assert form_of("Kyrie", "palestrina", "Palestrina") == "mass movement"
    assert form_of("bwv66.6", None, "Bach") == "chorale" and form_of(None, None, "Bach") == "chorale"
    assert form_of("Untitled", None, None) is None
    assert instrument_name(None, 48) == "string ensemble" and instrument_name(None, 19) == "church organ"
    assert instrument_name("Acoustic_Guitar", 24) == "acoustic guitar"
    assert instrument_name(None, 200) is None and instrument_name(None, None) is None
    assert instrument_name(None, 121) == "sound effects"                   # unnamed programs: their family


def test_config_rejects_mismatched_buckets():
    with pytest.raises(ValueError, match="edges need"):
        CaptionConfig(tempo_words=["slow", "fast"])
    with pytest.raises(ValueError, match="increase"):
        CaptionConfig(energy_edges=[3.0, 1.5, 5.0])


@pytest.mark.parametrize("meter, unit, expected", [("6/8", "quarter", 120.0), ("12/8", "quarter", 120.0),
                                                  ("3/4", "quarter", 180.0), ("2/2", "quarter", 180.0),
                                                  (None, "quarter", 180.0), ("6/8", "beat", 180.0)])
def test_metadata_tempo_is_counted_in_felt_beats(meter, unit, expected):
    meta = {"tempo_bpm": 180.0, **({"meter": meter} if meter else {})}
    tags = resolve_tags("a", meta, AUDIO, CaptionConfig(metadata_tempo_unit=unit))
    assert tags.tempo_bpm == pytest.approx(expected) and tags.metadata["tempo_bpm"] == 180.0
