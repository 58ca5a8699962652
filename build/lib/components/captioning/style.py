"""Style words that follow from metadata: a composer's era, the form named by a title or
collection, an instrument's everyday name.

These are lookup tables, not guesses: anything not in them stays unknown (None) and simply
does not appear in the caption.
"""

from __future__ import annotations

import re

# lower-case fragment of a composer / collection field -> (name as people write it, era)
COMPOSERS: tuple[tuple[str, str, str | None], ...] = (
    ("bach", "Bach", "Baroque"),
    ("handel", "Handel", "Baroque"),
    ("corelli", "Corelli", "Baroque"),
    ("vivaldi", "Vivaldi", "Baroque"),
    ("monteverdi", "Monteverdi", "late-Renaissance"),
    ("palestrina", "Palestrina", "Renaissance"),
    ("josquin", "Josquin", "Renaissance"),
    ("marenzio", "Marenzio", "Renaissance"),
    ("haydn", "Haydn", "Classical"),
    ("mozart", "Mozart", "Classical"),
    ("beethoven", "Beethoven", "Classical"),
    ("schubert", "Schubert", "Romantic"),
    ("schumann", "Schumann", "Romantic"),
    ("chopin", "Chopin", "Romantic"),
    ("joplin", "Scott Joplin", "ragtime"),
)

# collections that imply a tradition rather than a composer
COLLECTIONS: tuple[tuple[str, str], ...] = (
    ("ryan", "traditional"),         # Ryan's Mammoth Collection (Boston 1883): fiddle tunes of many lands
    ("oneill", "Irish folk"),
    ("o'neill", "Irish folk"),
    ("essen", "European folk"),
    ("folk", "folk"),
    ("chorale", "Baroque"),
)

# first match wins; matched against title + collection + composer, lower case
FORMS: tuple[tuple[str, str], ...] = (
    (r"chorale|\bbwv", "chorale"),
    (r"string quartet|quartet|\bop\.?\s*\d+\s*no|opus\d+", "string quartet movement"),
    (r"kyrie|gloria|credo|sanctus|agnus|benedictus|\bmissa\b|\bmass(es)?\b", "mass movement"),
    (r"madrigal|madrigali", "madrigal"),
    (r"motet", "motet"),
    (r"\bjigs?\b|\bgig[ue]*\b", "jig"),
    (r"\breels?\b", "reel"),
    (r"hornpipe", "hornpipe"),
    (r"strathspey", "strathspey"),
    (r"\bslides?\b", "slide"),
    (r"polka", "polka"),
    (r"waltz|valse", "waltz"),
    (r"minuet|menuet|menuetto", "minuet"),
    (r"\bmarch\b|marche", "march"),
    (r"\brag\b|ragtime|\brags\b", "rag"),
    (r"sonata", "sonata movement"),
    (r"fugue", "fugue"),
    (r"\bairs?\b|ballad|song", "song"),
)
# composers whose pieces in a score corpus are almost all one form
DEFAULT_FORMS = {"Bach": "chorale", "Monteverdi": "madrigal", "Scott Joplin": "rag"}

# everyday names for General-MIDI programs (0-based), by instrument family of 8
_GM_FAMILIES = ("piano", "chromatic percussion", "organ", "guitar", "bass", "strings", "string ensemble", "brass",
                "reed", "pipe", "synth lead", "synth pad", "synth effects", "ethnic", "percussive", "sound effects")
_GM_NAMES = {0: "piano", 1: "piano", 4: "electric piano", 6: "harpsichord", 8: "celesta", 11: "vibraphone",
             12: "marimba", 19: "church organ", 16: "organ", 21: "accordion", 22: "harmonica", 24: "nylon-string guitar",
             25: "steel-string guitar", 26: "jazz guitar", 32: "acoustic bass", 40: "violin", 41: "viola", 42: "cello",
             43: "contrabass", 45: "pizzicato strings", 46: "harp", 48: "string ensemble", 49: "string ensemble",
             52: "choir", 56: "trumpet", 57: "trombone", 58: "tuba", 60: "French horn", 61: "brass section",
             64: "soprano sax", 65: "alto sax", 68: "oboe", 70: "bassoon", 71: "clarinet", 72: "piccolo",
             73: "flute", 74: "recorder", 75: "pan flute", 79: "ocarina", 105: "banjo", 110: "fiddle"}


def composer_and_era(composer: str | None, collection: str | None) -> tuple[str | None, str | None]:
    """("Bach", "Baroque") from "J.S. Bach" / "bach"; unknown composers keep their own name."""
    for field in (composer, collection):
        text = (field or "").lower()
        for fragment, name, era in COMPOSERS:
            if fragment in text:
                return name, era
    era = None
    for fragment, tradition in COLLECTIONS:
        if fragment in (collection or "").lower():
            era = tradition
            break
    name = composer.strip() if composer and composer.strip() else None
    if name and re.match(r"^(unknown|anon|traditional|trad\b)", name.lower()):
        if era is None and "irish" in name.lower():       # "Traditional (Irish)"
            era = "Irish folk"
        name = None
    return name, era


def form_of(title: str | None, collection: str | None, composer_name: str | None) -> str | None:
    text = " ".join(x for x in (title, collection) if x).lower()
    for pattern, form in FORMS:
        if re.search(pattern, text):
            return form
    return DEFAULT_FORMS.get(composer_name or "")


def instrument_name(instrument: str | None, program: object) -> str | None:
    """Everyday instrument name: the metadata's own word, else the General-MIDI program's."""
    if instrument and str(instrument).strip():
        return str(instrument).strip().lower().replace("_", " ")
    try:
        p = int(program)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not 0 <= p < 128:
        return None
    return _GM_NAMES.get(p, _GM_FAMILIES[p // 8])
