"""Captioners: ClipTags -> several natural-language descriptions of a clip.

`Captioner` is the interface a stage (and later a larger audio-language model) implements:

    captions = captioner.caption(tags, n=5, rng=np.random.default_rng(seed))   # list of n strings

`TemplateCaptioner` is the default. It realises every known attribute in several surface forms
(adjective, trailing phrase, clause, bare tag; synonyms; number formats) and pours them into
one of several sentence shapes, dropping optional attributes at random, so the n phrasings of a
clip differ in structure and wording but never in facts:

    [0] Baroque four-part chorale in G major, 4/4, about 80 bpm, in the style of Bach, played by a string ensemble; warm and calm.
    [1] chorale, gentle, 80 bpm, slow tempo, warm, bach, baroque
    [2] A string ensemble plays a warm-toned, peaceful chorale in common time, after Bach, in G major, at approximately 80 bpm (andante).
    [3] A Baroque four-part chorale by Bach. The piece is played by a string ensemble, is in 4/4, has a slow tempo of about 80 BPM and is written in G major.
    [4] Baroque chorale, at about 80 beats per minute (andante), in 4/4, in four parts, played by a string ensemble.

Phrasing 0 is canonical (fixed order, every known attribute); the rest depend only on `rng`
(those above: `caption(tags, 5, np.random.default_rng(0))`, as tests/captioning checks).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from components.captioning.tags import ClipTags


@runtime_checkable
class Captioner(Protocol):
    """Anything that turns a clip's tags into `n` captions, deterministically for a given rng."""

    name: str

    def caption(self, tags: ClipTags, n: int, rng: np.random.Generator) -> list[str]:
        """`n` captions; captions[0] is the one shown when a single caption is needed."""
        ...


# --- words ------------------------------------------------------------------------------------

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
SYNONYMS = {   # audio-derived words -> ways to say them ([] = true but not worth saying)
    "dark": ["dark", "dark-toned", "dusky"], "warm": ["warm", "mellow", "warm-toned"],
    "bright": ["bright", "clear", "bright-toned"], "brilliant": ["brilliant", "very bright", "sparkling"],
    "calm": ["calm", "gentle", "peaceful"], "flowing": ["flowing", "steady", "easy-going"],
    "lively": ["lively", "animated", "spirited"], "energetic": ["energetic", "busy", "driving"],
    "quiet": ["quiet", "soft"], "moderate": [], "loud": ["loud", "powerful"], "very loud": ["very loud", "forceful"],
}
ITALIAN_TEMPI = ((60, "largo"), (76, "adagio"), (108, "andante"), (120, "moderato"), (168, "allegro"), (1e9, "presto"))
GENERIC_NOUNS = ("piece", "composition", "instrumental piece", "piece of music")
ENSEMBLE_WORDS = ("ensemble", "section", "choir", "orchestra", "quartet", "band", "strings", "voices", "consort")
VOCAL_WORDS = ("choir", "voices", "chorus", "vocal")


def spell_tonic(tonic: str, plain: bool) -> str:
    """"Bb" -> "B-flat" (or "Bb" in tag-style text), "F#" -> "F-sharp"."""
    if plain or len(tonic) == 1:
        return tonic
    return tonic[0] + ("-flat" if tonic[1] == "b" else "-sharp")


def indefinite(phrase: str) -> str:
    """"a" or "an" for the phrase (by sound: "an F-major", "an 80-bpm", "a four-part", "an organ")."""
    first = phrase.split()[0] if phrase.split() else ""
    if re.match(r"^[AEF](\b|-|#|b\b|$)", first) or re.match(r"^(8|11|18)\d*\b", first):
        return "an"
    if re.match(r"^(uni|use|eu|one)", first.lower()):
        return "a"
    return "an" if first[:1].lower() in "aeiou" else "a"


def join_and(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def tempo_number(tags: ClipTags) -> int:
    """Metadata tempo as written; an audio estimate rounded to 5 bpm (it is only an estimate)."""
    bpm = float(tags.tempo_bpm)
    return int(round(bpm)) if tags.tempo_source == "metadata" else int(5 * round(bpm / 5))


def italian_tempo(bpm: float) -> str:
    return next(word for limit, word in ITALIAN_TEMPI if bpm < limit)


def meter_forms(meter: str) -> dict[str, list[str]]:
    """Surface forms of a time signature ("3/4") or an audio metre guess ("triple")."""
    if meter in ("duple", "triple"):
        count = "two" if meter == "duple" else "three"
        return {"post": [f"in {meter} time", f"with a feel of {count}"], "tag": [f"{meter} meter", f"{meter} time"],
                "clause": [f"is in {meter} time", f"moves with a feel of {count}"]}
    post, clause = [f"in {meter}", f"in {meter} time"], [f"is in {meter}", f"is in {meter} time"]
    top, _, bottom = meter.partition("/")
    if meter == "4/4":
        post.append("in common time")
    elif meter == "2/2":
        post.append("in cut time")
    elif top.isdigit() and bottom in ("2", "4") and 2 <= int(top) <= 12:
        clause.append(f"has {NUMBER_WORDS[int(top)]} beats to the bar")
    if top in ("6", "9", "12") and bottom == "8":
        post.append(f"in compound {dict(zip('6 9 12'.split(), ('duple', 'triple', 'quadruple')))[top]} time")
    return {"post": post, "tag": [meter, f"{meter} time"], "clause": clause}


def instrument_forms(instrument: str) -> dict[str, list[str]]:
    """Ways to say who plays: "played by a string ensemble", "sung by a choir", "on the organ"."""
    plural = instrument.endswith("strings") or instrument.endswith("voices")
    vocal = any(w in instrument for w in VOCAL_WORDS)
    played = "sung" if vocal else "played"
    if any(w in instrument for w in ENSEMBLE_WORDS):
        subject = instrument if plural else f"{indefinite(instrument)} {instrument}"
        return {"post": [f"{played} by {subject}", f"performed by {subject}", f"for {instrument}"], "adj": [],
                "tag": [instrument], "subject": [subject], "clause": [f"is {played} by {subject}"],
                "verbs": ["sings" if vocal and not plural else "sing" if vocal else "play" if plural else "plays",
                          "perform" if plural else "performs"]}
    return {"post": [f"played on the {instrument}", f"performed on {instrument}", f"for solo {instrument}"],
            "adj": [instrument] if " " not in instrument else [], "tag": [instrument, f"solo {instrument}"],
            "subject": [f"solo {instrument}", f"the {instrument}"], "clause": [f"is played on the {instrument}"],
            "verbs": ["plays", "performs"]}


# --- one phrasing's material -----------------------------------------------------------------

@dataclasses.dataclass
class Material:
    """The chosen wording of one phrasing, before it is poured into a sentence shape.

    `post` and `clauses` map attribute -> words, so a shape can order or leave out attributes.
    """

    noun: str                                                         # "chorale"
    adjectives: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (attribute, words) before the noun
    post: dict[str, str] = dataclasses.field(default_factory=dict)    # after the noun: "in G major"
    clauses: dict[str, str] = dataclasses.field(default_factory=dict) # "is in G major"
    tags: list[str] = dataclasses.field(default_factory=list)         # "g major"
    subject: str | None = None                                        # "a string ensemble" (plays ...)
    verb: str = "plays"                                               # "plays" | "performs" | "sings"

    def noun_phrase(self, article: bool) -> str:
        ordered = sorted(self.adjectives, key=lambda aw: ADJECTIVE_ORDER.index(aw[0]))   # stable within a rank
        # quality adjectives are coordinate ("a mellow, lively, brisk tune"); the rest stack ("Baroque four-part")
        quality = [w for a, w in ordered if a in ("character", "tempo")]
        words = ([", ".join(quality)] if quality else []) + [w for a, w in ordered if a not in ("character", "tempo")]
        np_ = " ".join([*words, self.noun])
        return f"{indefinite(np_)} {np_}" if article else np_

    def said_before_noun(self, attribute: str) -> bool:
        return any(a == attribute for a, _ in self.adjectives)

    def phrases(self, order: Sequence[str] = (), skip: Sequence[str] = ()) -> list[str]:
        """Trailing phrases, `order` first (in that order), then the rest as stored."""
        names = [a for a in order if a in self.post] + [a for a in self.post if a not in order]
        return [self.post[a] for a in names if a not in skip]


# English puts opinion/quality before origin and type: "a calm, slow Bach four-part G-major organ chorale"
ADJECTIVE_ORDER = ("character", "tempo", "composer", "era", "parts", "key", "instrument")
OPTIONAL = ("key", "meter", "tempo", "composer", "era", "parts", "instrument", "character")
CANONICAL_ORDER = ("key", "meter", "tempo", "parts", "composer", "instrument", "character")


def known_attributes(tags: ClipTags) -> list[str]:
    have = {
        "key": tags.key and tags.mode, "meter": tags.meter, "tempo": tags.tempo_bpm, "composer": tags.composer,
        "era": tags.era, "parts": tags.n_parts and tags.n_parts > 1, "instrument": tags.instrument,
        "character": bool(_character_words(tags)),
    }
    return [a for a in OPTIONAL if have[a]]


def _character_words(tags: ClipTags) -> list[str]:
    """The catalogue's mood, then audio-derived descriptive words that are worth saying (see SYNONYMS)."""
    audio = [w for w in (tags.brightness_word, tags.energy_word, tags.loudness_word) if w and SYNONYMS.get(w, [w])]
    return ([tags.mood] if tags.mood else []) + [w for w in audio if w != tags.mood]


def realise(tags: ClipTags, keep: Sequence[str], rng: np.random.Generator | None) -> Material:
    """Word the kept attributes. rng=None gives the canonical (first-choice) wording."""

    def choose(options: Sequence[str]) -> str:
        return options[0] if rng is None else options[int(rng.integers(len(options)))]

    def coin(p: float) -> bool:
        return False if rng is None else bool(rng.random() < p)

    noun = tags.form or ("tune" if tags.era and ("folk" in tags.era or "traditional" in tags.era)
                         else choose(GENERIC_NOUNS))
    m = Material(noun=noun)
    tag_words: list[str] = [noun]
    if "era" in keep and not (tags.form and (tags.form in tags.era or tags.era in tags.form)):
        m.adjectives.append(("era", tags.era))
        tag_words.append(tags.era.lower())
    if "parts" in keep:
        parts = NUMBER_WORDS[tags.n_parts] if tags.n_parts < len(NUMBER_WORDS) else str(tags.n_parts)
        if coin(0.3):
            m.post["parts"] = f"in {parts} parts"
        else:
            m.adjectives.append(("parts", f"{parts}-part"))
        tag_words.append(f"{parts}-part")
    if "character" in keep:
        words = [choose(SYNONYMS.get(w, [w])) for w in _character_words(tags)]
        if coin(0.5):
            m.adjectives.append(("character", ", ".join(words[:2])))
        else:
            m.post["character"] = join_and(words) if rng is None else choose(
                [f"with {indefinite(words[0])} {join_and(words)} character", f"{join_and(words)} in feel"])
        m.clauses["character"] = f"sounds {join_and(words)}"
        tag_words += words
    if "tempo" in keep:
        bpm, word = tempo_number(tags), tags.tempo_word or italian_tempo(tags.tempo_bpm)
        about, unit = choose(["about", "around", "roughly", "approximately"]), choose(["bpm", "BPM", "beats per minute"])
        if rng is None:
            m.post["tempo"] = f"about {bpm} bpm"
        elif coin(0.25):
            m.adjectives.append(("tempo", "moderately paced" if word == "moderate" else word))
            m.post["tempo"] = f"at {about} {bpm} {unit}"
        else:
            m.post["tempo"] = choose([f"at {about} {bpm} {unit}", f"at {indefinite(word)} {word} pace ({bpm} bpm)",
                                      f"at {about} {bpm} {unit} ({italian_tempo(tags.tempo_bpm)})"])
        m.clauses["tempo"] = choose([f"moves at {about} {bpm} {unit}", f"has a {word} tempo of {about} {bpm} {unit}"])
        tag_words += [f"{bpm} bpm", choose([f"{word} tempo", italian_tempo(tags.tempo_bpm)])]
    if "key" in keep:
        tonic = spell_tonic(tags.key, plain=False)
        key = f"{tonic} {tags.mode}"
        if coin(0.25):
            m.adjectives.append(("key", f"{tonic}-{tags.mode}"))
        else:
            m.post["key"] = choose([f"in {key}", f"in the key of {key}"])
        m.clauses["key"] = choose([f"is in {key}", f"is written in {key}"])
        tag_words.append(f"{spell_tonic(tags.key, plain=True)} {tags.mode}".lower())
    if "meter" in keep:
        forms = meter_forms(tags.meter)
        m.post["meter"] = tags.meter if rng is None and "/" in tags.meter else choose(forms["post"])
        m.clauses["meter"] = choose(forms["clause"])
        tag_words.append(choose(forms["tag"]))
    if "composer" in keep:
        if coin(0.3):
            m.adjectives.append(("composer", tags.composer))
        else:
            m.post["composer"] = choose([f"in the style of {tags.composer}", f"by {tags.composer}",
                                         f"after {tags.composer}"])
        tag_words.append(tags.composer.lower())
    if "instrument" in keep:
        forms = instrument_forms(tags.instrument)
        if forms["adj"] and coin(0.3):
            m.adjectives.append(("instrument", choose(forms["adj"])))
        else:
            m.post["instrument"] = choose(forms["post"])
        m.subject = choose(forms["subject"])
        m.verb = choose(forms["verbs"])
        m.clauses["instrument"] = choose(forms["clause"])
        tag_words.append(choose(forms["tag"]))
    m.tags = tag_words
    return m


# --- sentence shapes -------------------------------------------------------------------------

def _canonical(m: Material, rng, generic_noun: bool = False) -> str:
    """NP in KEY, METER, TEMPO, STYLE, INSTRUMENT; CHARACTER ("A piece ..." when the form is unknown)."""
    rest = m.phrases(CANONICAL_ORDER, skip=("character",))
    character = m.post.get("character")
    if character and not rest:                       # nothing else to say: "A dark, calm piece."
        m = dataclasses.replace(m, adjectives=[*m.adjectives, ("character", character.replace(" and ", ", "))],
                                post={})
        character = None
    head = m.noun_phrase(article=generic_noun)
    if "key" in m.post:
        head, rest = f"{head} {rest[0]}", rest[1:]
    text = ", ".join([head, *rest])
    if character:
        text += f"; {character}"
    return capitalise(text) + "."


def _shuffled(items: list[str], rng) -> list[str]:
    return [items[i] for i in rng.permutation(len(items))]


def _listing(m: Material, rng) -> str:
    """NP, phrase, phrase, ... (shuffled)."""
    return capitalise(", ".join([m.noun_phrase(article=bool(rng.random() < 0.5)), *_shuffled(m.phrases(), rng)])) + "."


def _sentence(m: Material, rng) -> str:
    """A NP in KEY by COMPOSER, phrase, phrase."""
    close = [a for a in ("key", "composer") if a in m.post]
    head = " ".join([m.noun_phrase(article=True), *(m.post[a] for a in close)])
    tail = _shuffled(m.phrases(skip=close), rng)
    return capitalise(", ".join([head, *tail])) + "."


def _subject_plays(m: Material, rng) -> str | None:
    """A string ensemble plays a NP phrase, phrase."""
    if not m.subject or m.said_before_noun("instrument"):
        return None
    post = _shuffled(m.phrases(skip=("instrument",)), rng)
    head = f"{m.subject} {m.verb} {m.noun_phrase(article=True)}"
    return capitalise(" ".join([head, *post[:1]]) + "".join(f", {p}" for p in post[1:])) + "."


def _tags(m: Material, rng) -> str:
    """chorale, baroque, g major, 80 bpm, ... (a prompt as people type them)."""
    words = list(dict.fromkeys(m.tags))
    head, rest = words[:1], _shuffled(words[1:], rng)
    return ", ".join(head + rest) if rng.random() < 0.5 else ", ".join(rest + head)


def _two_sentences(m: Material, rng) -> str | None:
    """A NP by COMPOSER. It is in KEY, moves at TEMPO and is played by INSTRUMENT."""
    clauses = [c for a, c in m.clauses.items() if a != "composer" and not m.said_before_noun(a)]
    if not clauses:
        return None
    first = " ".join([m.noun_phrase(article=True), *m.phrases(skip=[a for a in m.post if a != "composer"])])
    pronoun = ["It", "The piece", "The music"][int(rng.integers(3))]
    return f"{capitalise(first)}. {pronoun} {join_and(_shuffled(clauses, rng))}."


def _music_for(m: Material, rng) -> str | None:
    """Music for INSTRUMENT by COMPOSER: a NP, phrase, phrase."""
    if m.said_before_noun("instrument") or (not m.subject and "composer" not in m.post):
        return None
    instrument = re.sub(r"^(a|an|the|solo) ", "", m.subject or "")
    lead = " ".join(x for x in ["Music", f"for {instrument}" if instrument else "", m.post.get("composer", "")] if x)
    post = _shuffled(m.phrases(skip=("instrument", "composer")), rng)
    return f"{lead}: " + ", ".join([m.noun_phrase(article=True), *post]) + "."


SHAPES: tuple[Callable[[Material, np.random.Generator], str | None], ...] = (
    _listing, _sentence, _subject_plays, _tags, _two_sentences, _music_for,
)


class TemplateCaptioner:
    """Varied captions from tags with a grammar of surface forms (see the module docstring).

    keep_probability: chance that each optional attribute appears in a non-canonical phrasing.
    """

    name = "template"

    def __init__(self, *, keep_probability: float = 0.75, max_tries_per_caption: int = 20):
        self.keep_probability = keep_probability
        self.max_tries = max_tries_per_caption

    def caption(self, tags: ClipTags, n: int, rng: np.random.Generator) -> list[str]:
        known = known_attributes(tags)
        out = [_canonical(realise(tags, known, None), rng, generic_noun=tags.form is None)]
        seen = {out[0].lower()}
        shapes = list(rng.permutation(len(SHAPES)))       # each shape once before any repeats
        tries = 0
        while len(out) < n and tries < n * self.max_tries:
            tries += 1
            if not shapes:
                shapes = list(rng.permutation(len(SHAPES)))
            shape = SHAPES[shapes[0]]
            keep = [a for a in known if rng.random() < self.keep_probability]
            if len(keep) < min(2, len(known)):              # a phrasing says at least two things
                keep = list(rng.choice(known, size=min(2, len(known)), replace=False))
            text = shape(realise(tags, keep, rng), rng)
            if text is None:
                shapes.pop(0)
                continue
            if text.lower() not in seen:
                shapes.pop(0)
                seen.add(text.lower())
                out.append(text)
        while len(out) < n:                                 # too little known to vary: repeat
            out.append(out[len(out) % max(1, len(seen))])
        return out


def make_captioner(name: str, **options) -> Captioner:
    if name == "template":
        return TemplateCaptioner(**options)
    raise ValueError(f"unknown captioner {name!r}")
