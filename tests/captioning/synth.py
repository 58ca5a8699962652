"""Test signals with known answers: chord cadences in a given key and tempo, click tracks.

Notes are additive tones (6 harmonics, 1/k amplitudes) with a plucked envelope, so onsets are
sharp (the beat tracker sees them) and the pitch content is exactly the chords written.
"""

from __future__ import annotations

import numpy as np

SR = 24_000
# scale degrees (semitones above the tonic) of I-IV-V-I; minor uses the harmonic-minor V
CADENCES = {
    "major": ((0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7)),
    "minor": ((0, 3, 7), (5, 8, 12), (7, 11, 14), (0, 3, 7)),
}


def midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12)


def tone(note: float, seconds: float, sr: int = SR, decay_s: float = 0.6) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    f0 = midi_hz(note)
    wave = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 7) if k * f0 < sr / 2)
    envelope = np.minimum(t / 0.005, 1.0) * np.exp(-t / decay_s)
    return (wave * envelope).astype(np.float32)


def cadence(tonic_pc: int, mode: str, bpm: float, seconds: float = 10.0, sr: int = SR) -> np.ndarray:
    """I-IV-V-I (i-iv-V-i in minor) repeated, one chord per beat, bass on the root.

    Returns mono float32 [seconds * sr] peaking at 0.5.
    """
    beat = 60.0 / bpm
    out = np.zeros(int(seconds * sr) + sr, dtype=np.float32)
    root = 60 + tonic_pc if tonic_pc < 6 else 48 + tonic_pc      # keep chords around middle C
    for i, start in enumerate(np.arange(0.0, seconds, beat)):
        chord = CADENCES[mode][i % 4]
        notes = [root + d for d in chord] + [root + chord[0] - 12]
        at = int(start * sr)
        for n in notes:
            sound = tone(n, beat * 1.5, sr)
            out[at:at + sound.size] += sound[: out.size - at]
    out = out[: int(seconds * sr)]
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def click_track(bpm: float, seconds: float = 10.0, sr: int = SR, accent_every: int = 4) -> np.ndarray:
    """A metronome: 15 ms blips at `bpm`, the first of every `accent_every` louder and higher."""
    out = np.zeros(int(seconds * sr), dtype=np.float32)
    n = int(0.015 * sr)
    t = np.arange(n) / sr
    for i, start in enumerate(np.arange(0.0, seconds, 60.0 / bpm)):
        accent = i % accent_every == 0
        blip = np.sin(2 * np.pi * (1500 if accent else 1000) * t) * np.exp(-t / 0.004) * (1.0 if accent else 0.6)
        at = int(start * sr)
        out[at:at + n] += blip[: out.size - at]
    return out * 0.5


def gm_cadence(tonic_pc: int, mode: str, bpm: float, program: int, seconds: float = 10.0, sr: int = SR) -> np.ndarray:
    """The same cadence played by a General-MIDI instrument (TimGM6mb.sf2, shipped in pretty_midi)."""
    import os

    import pretty_midi
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=sr)
    sfid = synth.sfload(os.path.join(os.path.dirname(pretty_midi.__file__), "TimGM6mb.sf2"))
    synth.program_select(0, sfid, 0, program)
    beat_samples = int(round(60.0 / bpm * sr))
    root = 60 + tonic_pc if tonic_pc < 6 else 48 + tonic_pc
    chunks = []
    for i in range(int(np.ceil(seconds * sr / beat_samples))):
        chord = CADENCES[mode][i % 4]
        notes = [root + d for d in chord] + [root + chord[0] - 12]
        for n in notes:
            synth.noteon(0, n, 90)
        stereo = np.frombuffer(synth.generate(beat_samples), dtype=np.float32).reshape(-1, 2)
        chunks.append(stereo.mean(axis=1))
        for n in notes:
            synth.noteoff(0, n)
    out = np.concatenate(chunks)[: int(seconds * sr)]
    return (0.5 * out / max(float(np.abs(out).max()), 1e-9)).astype(np.float32)


def bar_pattern(beats_per_bar: int, bpm: float, tonic_pc: int = 0, seconds: float = 10.0, sr: int = SR) -> np.ndarray:
    """A bass note and a new chord on every downbeat, lighter repeated chords on the other beats."""
    beat = 60.0 / bpm
    out = np.zeros(int(seconds * sr) + sr, dtype=np.float32)
    root = 48 + tonic_pc
    for i, start in enumerate(np.arange(0.0, seconds, beat)):
        bar, pos = divmod(i, beats_per_bar)
        chord = CADENCES["major"][bar % 4]
        notes = [root + 12 + d for d in chord] + ([root + chord[0] - 12] if pos == 0 else [])
        gain = 1.0 if pos == 0 else 0.35
        at = int(start * sr)
        for n in notes:
            sound = gain * tone(n, beat * 1.2, sr, decay_s=0.3)
            out[at:at + sound.size] += sound[: out.size - at]
    out = out[: int(seconds * sr)]
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def pad_cadence(tonic_pc: int, mode: str, bpm: float, seconds: float = 10.0, sr: int = SR,
                attack_s: float = 0.25) -> np.ndarray:
    """The cadence as a legato pad (choir/organ-like): slow attacks, each chord held to the next.

    Spectral-flux onsets are faint here; what marks the beat is the change of harmony.
    """
    beat = 60.0 / bpm
    n_beat = int(round(beat * sr))
    t = np.arange(n_beat + int(0.05 * sr)) / sr
    envelope = np.minimum(t / attack_s, 1.0) * np.clip((t[-1] - t) / 0.05, 0.0, 1.0)
    out = np.zeros(int(seconds * sr) + t.size, dtype=np.float32)
    root = 60 + tonic_pc if tonic_pc < 6 else 48 + tonic_pc
    for i in range(int(np.ceil(seconds / beat))):
        chord = CADENCES[mode][i % 4]
        at = i * n_beat
        for note in [root + d for d in chord] + [root + chord[0] - 12]:
            f0 = midi_hz(note)
            wave = sum(np.sin(2 * np.pi * k * f0 * t) / k ** 2 for k in range(1, 5))
            out[at:at + t.size] += (wave * envelope).astype(np.float32)
    out = out[: int(seconds * sr)]
    return (0.5 * out / np.abs(out).max()).astype(np.float32)
