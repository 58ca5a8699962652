"""A clip's tags: metadata values and audio-derived values side by side, plus the resolved
value a caption uses for each attribute (metadata where known, the audio estimate otherwise).

    manifest row --metadata_of--> {tempo_bpm, key, mode, meter, instrument, composer, artist, genre, mood, ...}
    clip audio   --analysis-----> AudioFeatures
                  --resolve_tags--> ClipTags  (both sources kept; `.to_json()` goes in captions.parquet)
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import math
from typing import Any, Mapping, Sequence

from components.captioning.analysis import AudioFeatures
from components.captioning.keys import parse_key
from components.captioning.style import composer_and_era, form_of, instrument_name

METADATA_FIELDS = ("title", "composer", "collection", "instrument", "program", "key", "mode", "meter", "tempo_bpm")


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    if isinstance(value, str) and not value.strip():
        return False
    try:
        import pandas as pd

        return not bool(pd.isna(value))
    except (TypeError, ValueError):
        return True


def metadata_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The sidecar metadata of a manifest row: known columns first, then the `meta` JSON.

    Only present values are returned (NaN / None / "" are dropped), as plain Python types.
    """
    meta: dict[str, Any] = {}
    raw = row.get("meta")
    if isinstance(raw, str) and raw.strip():
        try:
            parsed = json.loads(raw)
            if isinstance(parsed, dict):
                meta.update({k: v for k, v in parsed.items() if _present(v) and not isinstance(v, (dict, list))})
        except json.JSONDecodeError:
            pass
    for field in METADATA_FIELDS:
        value = row.get(field)
        if _present(value):
            meta[field] = value.item() if hasattr(value, "item") else value
    return meta


def bucket(value: float | None, edges: Sequence[float], words: Sequence[str]) -> str | None:
    """The word for `value`: words[i] where edges[i-1] <= value < edges[i]."""
    if value is None or not math.isfinite(value):
        return None
    return words[bisect.bisect_right(list(edges), value)]


def _float_or_none(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def beats_per_quarter(meter: str | None) -> float:
    """How many felt beats a quarter note is worth under a time signature.

    Compound metres (3/8, 6/8, 9/8, 12/8) are felt in dotted quarters, so a jig notated at 180
    quarters a minute is heard, counted and beat-tracked at 120. Simple metres count quarters
    (2/2 and 3/2 too: their half-note beat is an octave away, which acc2 already forgives).
    """
    top, _, bottom = (meter or "").partition("/")
    if bottom == "8" and top in ("3", "6", "9", "12"):
        return 2 / 3
    return 1.0


def metadata_beat_tempo(metadata: Mapping[str, Any], unit: str) -> float | None:
    """The metadata tempo in felt beats per minute (see `beats_per_quarter`)."""
    bpm = _float_or_none(metadata.get("tempo_bpm"))
    if bpm is None or unit == "beat":
        return bpm
    return bpm * beats_per_quarter(_meter_or_none(metadata.get("meter")))


def _meter_or_none(value: Any) -> str | None:
    text = str(value).strip() if _present(value) else ""
    return text if text and "/" in text else None


def _n_parts(meta: Mapping[str, Any]) -> int | None:
    for field in ("n_parts", "parts", "num_parts"):
        value = meta.get(field)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 1 <= value <= 12:
            return int(value)
    return None


@dataclasses.dataclass(frozen=True)
class ClipTags:
    """Everything a captioner may say about one clip. None = unknown, and then left unsaid."""

    clip_id: str
    audio_path: str | None = None    # for captioners that listen (an audio-language model)
    # resolved values (what captions state) and where each came from: "metadata" | "audio"
    tempo_bpm: float | None = None
    tempo_source: str | None = None
    key: str | None = None           # tonic, e.g. "Bb"
    mode: str | None = None          # "major" | "minor"
    key_source: str | None = None
    meter: str | None = None         # "3/4" (metadata) or "duple" / "triple" (audio estimate)
    meter_source: str | None = None
    instrument: str | None = None
    composer: str | None = None      # as people write it: "Bach"
    era: str | None = None           # "Baroque", "Irish folk", ...
    form: str | None = None          # "chorale", "jig", ...
    n_parts: int | None = None
    title: str | None = None
    mood: str | None = None          # a catalogue's mood tag ("mellow"): said before the audio-derived words
    # words from audio measurements
    tempo_word: str | None = None
    brightness_word: str | None = None
    energy_word: str | None = None
    loudness_word: str | None = None
    # both sources, unresolved
    audio: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=str)


def resolve_tags(clip_id: str, metadata: Mapping[str, Any], audio: AudioFeatures, config, *,
                 audio_path: str | None = None) -> ClipTags:
    """Combine metadata and audio estimates into the tags a caption states.

    `config` is a CaptionConfig (bucket edges/words, prefer_metadata).
    """
    prefer_meta = config.prefer_metadata

    def pick(meta_value, audio_value):
        if prefer_meta and meta_value is not None:
            return meta_value, "metadata"
        if audio_value is not None:
            return audio_value, "audio"
        return (meta_value, "metadata") if meta_value is not None else (None, None)

    tempo, tempo_source = pick(metadata_beat_tempo(metadata, config.metadata_tempo_unit), audio.tempo_bpm)
    meta_key = parse_key(metadata.get("key"), metadata.get("mode"))
    audio_key = (audio.key, audio.mode) if audio.key and audio.mode else None
    key_pair, key_source = pick((meta_key.tonic_name, meta_key.mode) if meta_key else None, audio_key)
    meter, meter_source = pick(_meter_or_none(metadata.get("meter")),
                               audio.metre if config.audio_metre_in_captions else None)
    composer, era = composer_and_era(_str(metadata.get("composer")), _str(metadata.get("collection")))
    # a catalogue's tags: its artist is whose style a prompt names ("in the style of ..."), its genre names the
    # style the way an era does ("a jazz piece"); neither is guessed where the tags say nothing
    composer = composer or _str(metadata.get("artist"))
    era = era or _str(metadata.get("genre"))
    title = _str(metadata.get("title"))
    return ClipTags(
        clip_id=clip_id, audio_path=audio_path,
        tempo_bpm=tempo, tempo_source=tempo_source,
        key=key_pair[0] if key_pair else None, mode=key_pair[1] if key_pair else None, key_source=key_source,
        meter=meter, meter_source=meter_source,
        instrument=instrument_name(_str(metadata.get("instrument")), metadata.get("program")),
        composer=composer, era=era, form=form_of(title, _str(metadata.get("collection")), composer),
        n_parts=_n_parts(metadata), title=title, mood=(_str(metadata.get("mood")) or "").lower() or None,
        tempo_word=bucket(tempo, config.tempo_edges_bpm, config.tempo_words),
        brightness_word=bucket(audio.brightness_hz, config.brightness_edges_hz, config.brightness_words),
        energy_word=bucket(audio.onset_rate, config.energy_edges, config.energy_words),
        loudness_word=bucket(audio.loudness_lufs, config.loudness_edges_lufs, config.loudness_words),
        audio=audio.to_dict(), metadata=dict(metadata),
    )


def _str(value: Any) -> str | None:
    return str(value).strip() if _present(value) and str(value).strip() else None
