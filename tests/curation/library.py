"""A team's library as a new user brings it, generated: Artist/Album/NN Title.ext in four formats (flac stereo,
ogg, mp3, wav; 44.1 kHz) with the format's own embedded tags written by mutagen, and one hand-made sidecar."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.curation.conftest import synth_music

# artist, album, genre, mood, format, tracks
LIBRARY = [
    ("Ann Ode", "Night Lines", "Jazz", "mellow", "flac", 3),
    ("Ann Ode", "Day Lines", "Jazz", None, "ogg", 3),
    ("Bo Reel", "Harbour", "Folk", "lively", "mp3", 3),
    ("Bo Reel", "Inland", None, None, "wav", 3),
]


def tag(path: Path, fields: dict) -> None:
    """Write the fields as the format's own tags (mutagen: the library catalogues are tagged with)."""
    if path.suffix == ".mp3":
        from mutagen.easyid3 import EasyID3
        from mutagen.mp3 import MP3

        audio = MP3(path, ID3=EasyID3)
        audio.add_tags()
    elif path.suffix == ".wav":
        from mutagen.id3 import TALB, TCON, TIT2, TPE1
        from mutagen.wave import WAVE

        audio = WAVE(path)
        audio.add_tags()
        frames = {"title": TIT2, "artist": TPE1, "album": TALB, "genre": TCON}
        for key, value in fields.items():
            if key in frames:
                audio.tags.add(frames[key](encoding=3, text=[value]))
        audio.save()
        return
    else:
        import mutagen

        audio = mutagen.File(path)
    for key, value in fields.items():
        audio[key] = value
    audio.save()


def make_library(root: Path, layout=LIBRARY, seconds: float = 4.0, seed: int = 0) -> Path:
    """Write the library below `root` (created); each track is a different synthetic piece."""
    for artist, album, genre, mood, fmt, tracks in layout:
        for n in range(1, tracks + 1):
            path = root / artist / album / f"{n:02d} Track {n}.{fmt}"
            path.parent.mkdir(parents=True, exist_ok=True)
            audio = synth_music(seconds, 44_100, seed=seed)
            seed += 1
            sf.write(path, np.stack([audio, audio], axis=1) if fmt == "flac" else audio, 44_100)
            fields = {"title": f"Track {n}", "artist": artist, "album": album}
            fields.update({k: v for k, v in (("genre", genre), ("mood", mood)) if v})
            if fmt == "flac":
                fields["bpm"] = "96"
            tag(path, fields)
    # a sidecar outranks the tags: this track is re-labelled by hand
    (root / layout[0][0] / layout[0][1] / "01 Track 1.json").write_text(json.dumps({"genre": "Bebop"}))
    return root
