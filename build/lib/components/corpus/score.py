"""A music21 score -> the facts a track is labelled with, and the MIDI bytes it is rendered from.

Key and mode come from music21's key analysis (Krumhansl-Schmuckler on the whole score),
metre from the time signature that governs most bars (a one-bar pickup in 1/16 is not the
metre), tempo from the first metronome mark, or, where the encoding has none, from a
deterministic draw in the collection's usual range, which is then written into the MIDI so
the audio plays at exactly the tempo its label states.
"""

from __future__ import annotations

import collections
import dataclasses
import random
import re

from components.corpus.catalogue import COLLECTIONS, Candidate


@dataclasses.dataclass(frozen=True)
class ScoreFacts:
    title: str
    composer: str
    key: str                 # tonic, "Bb" / "F#" / "C"
    mode: str                # "major" | "minor"
    meter: str               # "4/4", "6/8", ...
    tempo_bpm: float         # quarter notes per minute
    tempo_from_score: bool   # False: no metronome mark in the encoding, tempo_bpm was drawn
    bar_offsets: tuple[float, ...]  # bar starts in quarter lengths (first part), for cutting at a bar line
    length_ql: float         # whole score in quarter lengths


def load_score(candidate: Candidate):
    """Parse the score from the music21 corpus (no parse cache is read or written)."""
    from music21 import corpus, stream

    parsed = corpus.parse(candidate.corpus_path, number=candidate.number, forceSource=True)
    if isinstance(parsed, stream.Opus):  # a tune book handed back whole
        if not parsed.scores:
            raise ValueError("opus without scores")
        parsed = parsed.scores[0]
    if not parsed.recurse().notes:
        raise ValueError("score has no notes")
    return parsed


def score_facts(score, candidate: Candidate, seed: int) -> ScoreFacts:
    from music21 import meter, tempo

    collection = COLLECTIONS[candidate.collection]
    analysed = score.analyze("key")
    marks = list(score.recurse().getElementsByClass(tempo.MetronomeMark))
    quarter_bpm = next((m.getQuarterBPM() for m in marks if m.getQuarterBPM()), None)
    if quarter_bpm is None:
        low, high = collection.default_tempo
        quarter_bpm = float(random.Random(f"{seed}:tempo:{candidate.piece_id}").randint(low, high))
    part = score.parts[0] if score.parts else score
    measures = list(part.getElementsByClass("Measure"))
    bar_offsets = tuple(float(m.offset) for m in measures) or (0.0,)
    # the time signature in force for the most bars (carried forward from bar to bar)
    current, counts = None, collections.Counter()
    for m in measures:
        current = m.timeSignature or current
        if current is not None:
            counts[current.ratioString] += 1
    if not counts:
        first = next(iter(score.recurse().getElementsByClass(meter.TimeSignature)), None)
        counts[first.ratioString if first else "4/4"] += 1
    return ScoreFacts(
        title=_title(score, candidate),
        composer=collection.composer,
        key=analysed.tonic.name.replace("-", "b"),
        mode=analysed.mode if analysed.mode in ("major", "minor") else "major",
        meter=counts.most_common(1)[0][0],
        tempo_bpm=round(float(quarter_bpm), 2),
        tempo_from_score=bool(marks),
        bar_offsets=bar_offsets,
        length_ql=float(score.highestTime),
    )


def _title(score, candidate: Candidate) -> str:
    meta = score.metadata
    title = (meta.title if meta is not None else None) or candidate.title or ""
    stem = candidate.corpus_path.split("/", 1)[-1].rsplit(".", 1)[0]
    if candidate.collection == "bach":
        return f"Chorale BWV {stem.removeprefix('bwv')}"
    if candidate.collection == "monteverdi":
        book, _, number = stem.removeprefix("madrigal.").partition(".")
        return f"Madrigal, Book {book} No. {number}" + (f": {title}" if title else "")
    if candidate.collection == "palestrina":
        mass = getattr(meta, "parentTitle", None) if meta is not None else None
        return f"{mass}: {title}" if mass and title else (title or stem)
    if title.isupper():  # Ryan's titles are set in capitals
        title = re.sub(r"[A-Za-z']+", lambda m: m.group(0).capitalize(), title.lower())
    return title or stem


def export_midi(score) -> bytes:
    """The score as a Standard MIDI File (one track per part, music21's default 10080 ticks/quarter)."""
    from music21 import midi

    return midi.translate.streamToMidiFile(score).writestr()
