"""The offline demo corpus: public-domain scores from the music21 corpus, rendered to audio.

    music21 score ──► score facts (title, key, mode, metre, tempo, bar lines) + MIDI bytes
                 ──► render.py: programs rewritten to one GM instrument, cut at a bar line,
                     synthesised with TinySoundFont + TimGM6mb.sf2 ──► mono 24 kHz PCM16 wav
                 ──► build.py: wav + JSON sidecar per track, tracks.parquet, split by piece

`lyra corpus demo --out DIR` is the command; `catalogue.py` says which collections are used
and under which licence note.
"""
