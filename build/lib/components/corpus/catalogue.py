"""Which music21 scores the demo corpus uses, under which licence note, and in what order.

Only collections whose compositions are public domain and whose encodings ship with music21
under its corpus licence (music21/corpus/license.txt) are listed. Each track records the
collection's note plus any copyright line embedded in the encoding itself, so the terms of an
individual file travel with its audio.

The candidate order is deterministic for a seed: each collection's pieces are shuffled with
`Random(f"{seed}:{collection}")` and the collections are interleaved round-robin, so the first
N candidates cover every collection and a bigger corpus is a superset of a smaller one.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Iterator

SOUNDFONT_NOTE = ("rendered offline with the General-MIDI SoundFont TimGM6mb.sf2 (Tim Brechbill, GPL-2.0) "
                  "as shipped in pretty_midi")
MUSIC21_NOTE = ("encoding from the music21 corpus, distributed under the music21 corpus licence "
                "(music21/corpus/license.txt)")


@dataclasses.dataclass(frozen=True)
class Collection:
    name: str                      # folder in music21/corpus
    label: str                     # human-readable collection name (the `collection` column)
    composer: str                  # canonical composer (some encodings carry OCR noise in that field)
    licence: str                   # the composition's status; MUSIC21_NOTE and SOUNDFONT_NOTE are appended
    default_tempo: tuple[int, int]  # quarter-note bpm range for scores without a metronome mark
    min_parts: int = 1
    max_parts: int = 8             # one MIDI channel per part, drum channel 9 avoided
    suffixes: tuple[str, ...] = (".mxl", ".xml", ".krn", ".abc")
    path_prefix: str = ""          # e.g. "bach/bwv" keeps the chorales, not the analyses


COLLECTIONS: dict[str, Collection] = {c.name: c for c in (
    Collection("bach", "Bach chorales", "Johann Sebastian Bach",
               "composition public domain (J. S. Bach, 1685-1750)", (66, 92),
               min_parts=4, max_parts=5, suffixes=(".mxl", ".xml"), path_prefix="bach/bwv"),
    Collection("palestrina", "Palestrina masses", "Giovanni Pierluigi da Palestrina",
               "composition public domain (Palestrina, c.1525-1594)", (96, 132), min_parts=3),
    Collection("monteverdi", "Monteverdi madrigals", "Claudio Monteverdi",
               "composition public domain (Monteverdi, 1567-1643)", (90, 126), min_parts=4, suffixes=(".mxl",)),
    Collection("ryansMammoth", "Ryan's Mammoth Collection", "Traditional",
               "traditional tune, public domain (published 1883)", (150, 200), max_parts=1),
    Collection("oneills1850", "O'Neill's Music of Ireland", "Traditional (Irish)",
               "traditional tune, public domain (published 1903)", (100, 160), max_parts=1),
    Collection("airdsAirs", "Aird's Airs", "Traditional (Scottish)",
               "traditional tune, public domain (published by James Aird, 1782-1797)", (80, 130), max_parts=1),
)}


@dataclasses.dataclass(frozen=True)
class Instrument:
    name: str
    program: int  # General MIDI program, 0-based (TimGM6mb preset name in the comment)


INSTRUMENTS: dict[str, Instrument] = {i.name: i for i in (
    Instrument("piano", 0),         # Piano 1
    Instrument("harpsichord", 6),   # Harpsichord
    Instrument("organ", 19),        # Church Organ
    Instrument("guitar", 24),       # Nylon Guitar
    Instrument("strings", 48),      # Strings (ensemble)
    Instrument("choir", 52),        # Choir Aahs
    Instrument("clarinet", 71),     # Clarinet
    Instrument("flute", 73),        # Flute
    # timbres kept out of the training corpus by default: the out-of-distribution set plays them
    Instrument("vibraphone", 11),   # Vibraphone
    Instrument("accordion", 21),    # Accordion
    Instrument("violin", 40),       # Violin
    Instrument("trumpet", 56),      # Trumpet
    Instrument("oboe", 68),         # Oboe
    Instrument("bassoon", 70),      # Bassoon
)}


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One score in the music21 corpus (an opus file such as an ABC tune book has one per tune)."""

    collection: str
    corpus_path: str        # relative to music21/corpus, e.g. "oneills1850/0001-0050.abc"
    number: int | None      # tune number inside an opus file
    title: str | None       # from the metadata cache; the parsed score is asked again later
    copyright: str | None   # copyright line embedded in the encoding, if any

    @property
    def piece_id(self) -> str:
        """A file-name-safe id, unique in the corpus: `<collection>-<file stem>[-<number>]`."""
        stem = self.corpus_path.split("/", 1)[-1].rsplit(".", 1)[0]
        raw = f"{self.collection}-{stem}" + (f"-{self.number}" if self.number is not None else "")
        return "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in raw)

    @property
    def source(self) -> str:
        where = f"music21 corpus: {self.corpus_path}"
        return where + (f" #{self.number}" if self.number is not None else "")


def _metadata_entries():
    from music21 import corpus

    return corpus.corpora.CoreCorpus().metadataBundle._metadataEntries.values()


def list_candidates(collection: Collection) -> list[Candidate]:
    """Every usable score of a collection, sorted (the metadata cache loads in ~1 s, parses nothing)."""
    out = []
    for entry in _metadata_entries():
        path = str(entry.sourcePath)
        meta = entry.metadata
        if meta is None or not path.startswith(collection.name + "/") or not path.startswith(collection.path_prefix):
            continue
        if not path.endswith(collection.suffixes):
            continue
        parts = meta.numberOfParts or 0
        if not collection.min_parts <= parts <= collection.max_parts:
            continue
        if (meta.scoreQuarterLength or 0) < 8:  # fragments and empty headers
            continue
        # tune books (O'Neill's) hold many tunes per file, told apart by number
        number = int(entry.number) if entry.number not in (None, "") else None
        out.append(Candidate(collection.name, path, number, meta.title, _embedded_terms(meta)))
    return sorted(out, key=lambda c: (c.corpus_path, c.number or 0))


def _embedded_terms(meta) -> str | None:
    """Copyright and licence lines the encoder put in the file (Humdrum `!!!YEM` records included)."""
    lines = []
    for key, value in meta.all():
        if key == "copyright" or key.endswith(":YEM"):
            text = " ".join(str(value).split())
            if text not in lines:
                lines.append(text)
    return " ".join(lines) or None


def candidate_order(collections: list[str], seed: int) -> Iterator[Candidate]:
    """Candidates of all `collections`, shuffled per collection and interleaved round-robin."""
    queues = []
    for name in collections:
        pool = list_candidates(COLLECTIONS[name])
        random.Random(f"{seed}:{name}").shuffle(pool)
        queues.append(pool)
    seen: set[str] = set()  # two encodings of one piece would share a piece_id (and its files)
    for i in range(max((len(q) for q in queues), default=0)):
        for queue in queues:
            if i < len(queue) and queue[i].piece_id not in seen:
                seen.add(queue[i].piece_id)
                yield queue[i]


def licence_note(candidate: Candidate) -> str:
    """The composition's status, the encoding's terms (with its own copyright line) and the SoundFont's."""
    note = f"{COLLECTIONS[candidate.collection].licence}; {MUSIC21_NOTE}"
    if candidate.copyright:
        note += f"; the encoding states: {candidate.copyright!r}"
    return f"{note}; {SOUNDFONT_NOTE}"
