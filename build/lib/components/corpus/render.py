"""MIDI bytes -> mono audio, played by one General-MIDI instrument, cut at a bar line.

The events are fed to TinySoundFont by hand (not its sequencer) so that the program of every
channel is ours, every part gets its own channel (music21 puts all parts on channel 0, which
lets one voice's note-off silence another's unison), the tempo can be replaced, and the
piece stops cleanly at a bar line with a natural release instead of mid-note:

    ticks ──tempo map──► seconds ──× sample_rate──► sample index of each event
    [ render up to the cut bar ][ all notes off, render release_s, fade the last 0.25 s ]
"""

from __future__ import annotations

import bisect
import functools
import io
import os
from typing import Sequence

import numpy as np

# every channel except 9, which General MIDI reserves for drums
MELODIC_CHANNELS = tuple(c for c in range(16) if c != 9)
FADE_S = 0.25


def soundfont_path() -> str:
    import pretty_midi

    return os.path.join(os.path.dirname(pretty_midi.__file__), "TimGM6mb.sf2")


@functools.lru_cache(maxsize=1)
def _soundfont_bytes() -> bytes:
    with open(soundfont_path(), "rb") as fh:
        return fh.read()


def _fresh_synth(sample_rate: int):
    """A new synthesiser per track (~10 ms): a reused one carries voice/filter state from the previous
    track into the first samples of the next, which made the output depend on the worker count."""
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=sample_rate)
    return synth, synth.sfload(_soundfont_bytes())


class TempoMap:
    """Tick -> seconds through a piecewise-constant tempo (µs per quarter)."""

    def __init__(self, ticks_per_beat: int, changes: Sequence[tuple[int, int]]):
        self.tpb = ticks_per_beat
        changes = sorted(changes) or [(0, 500_000)]
        if changes[0][0] != 0:
            changes.insert(0, (0, 500_000))  # MIDI's default 120 bpm until the first set_tempo
        self.ticks = [t for t, _ in changes]
        self.tempi = [us for _, us in changes]
        self.starts_s = [0.0]
        for i in range(1, len(changes)):
            span = self.ticks[i] - self.ticks[i - 1]
            self.starts_s.append(self.starts_s[-1] + span * self.tempi[i - 1] / 1e6 / self.tpb)

    def seconds(self, tick: float) -> float:
        i = bisect.bisect_right(self.ticks, tick) - 1
        return self.starts_s[i] + (tick - self.ticks[i]) * self.tempi[i] / 1e6 / self.tpb


def _events(midi_file) -> tuple[list[tuple[int, int, int, object]], list[tuple[int, int]]]:
    """All channel messages as (abs_tick, order, channel, msg), note-offs first within a tick; and the tempo changes."""
    events, tempi = [], []
    for track_index, track in enumerate(midi_file.tracks):
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                tempi.append((tick, msg.tempo))
            elif not msg.is_meta and hasattr(msg, "channel"):
                # one channel per MIDI track (= music21 part); track 0 is the conductor track
                channel = MELODIC_CHANNELS[track_index % len(MELODIC_CHANNELS)]
                is_off = msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0)
                events.append((tick, 0 if is_off else 1, channel, msg))
    events.sort(key=lambda e: (e[0], e[1]))
    return events, tempi


def render_midi(
    midi_bytes: bytes,
    program: int,
    *,
    sample_rate: int,
    max_s: float,
    release_s: float,
    bar_offsets_ql: Sequence[float] = (),
    tempo_bpm: float | None = None,
) -> np.ndarray:
    """Render to float32 mono (samples,), at most `max_s` long, every part on GM `program`.

    `tempo_bpm` (quarter notes per minute), when given, replaces every tempo in the file.
    `bar_offsets_ql` are the bar starts in quarter lengths; the piece is cut at the last one
    that fits in `max_s - release_s` (or at that time itself if no bar line does).
    """
    import mido

    midi_file = mido.MidiFile(file=io.BytesIO(midi_bytes))
    events, tempi = _events(midi_file)
    if tempo_bpm is not None:
        tempi = [(0, int(round(60e6 / tempo_bpm)))]
    tempo_map = TempoMap(midi_file.ticks_per_beat, tempi)
    note_ticks = [tick for tick, _, _, msg in events if msg.type in ("note_on", "note_off")]
    if not note_ticks:
        raise ValueError("MIDI has no notes")
    end_tick = max(note_ticks)
    budget_s = max_s - release_s
    if tempo_map.seconds(end_tick) <= budget_s:
        cut_s = tempo_map.seconds(end_tick)
    else:
        bars_s = [tempo_map.seconds(ql * midi_file.ticks_per_beat) for ql in bar_offsets_ql]
        fitting = [s for s in bars_s if 0 < s <= budget_s]
        # a bar line in the second half of the budget; otherwise cut mid-bar rather than lose half the audio
        cut_s = fitting[-1] if fitting and fitting[-1] >= budget_s / 2 else budget_s

    synth, sfid = _fresh_synth(sample_rate)
    for channel in MELODIC_CHANNELS:
        synth.program_select(channel, sfid, 0, program)
        synth.pitchbend(channel, 8192)
    cut_sample = int(round(cut_s * sample_rate))
    chunks, position = [], 0
    for tick, _, channel, msg in events:
        at = int(round(tempo_map.seconds(tick) * sample_rate))
        if at > cut_sample or (at == cut_sample and msg.type == "note_on" and msg.velocity > 0):
            break
        if at > position:
            chunks.append(np.frombuffer(synth.generate_simple(at - position), dtype=np.float32).copy())
            position = at
        _apply(synth, channel, msg)
    if cut_sample > position:
        chunks.append(np.frombuffer(synth.generate_simple(cut_sample - position), dtype=np.float32).copy())
    synth.notes_off()
    tail = int(round(release_s * sample_rate))
    if tail:
        chunks.append(np.frombuffer(synth.generate_simple(tail), dtype=np.float32).copy())
    stereo = np.concatenate(chunks).reshape(-1, 2)  # interleaved L R L R ...
    mono = stereo.mean(axis=1)
    fade = min(len(mono), int(FADE_S * sample_rate))
    if fade:
        mono[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return mono.astype(np.float32, copy=False)


def _apply(synth, channel: int, msg) -> None:
    if msg.type == "note_on" and msg.velocity > 0:
        synth.noteon(channel, msg.note, msg.velocity)
    elif msg.type in ("note_on", "note_off"):
        synth.noteoff(channel, msg.note)
    elif msg.type == "control_change" and msg.control not in (0, 32):  # bank select would leave GM bank 0
        synth.control_change(channel, msg.control, msg.value)
    elif msg.type == "pitchwheel":
        synth.pitchbend(channel, msg.pitch + 8192)
    # program changes are ignored on purpose: the instrument is ours to choose


def peak_normalise(audio: np.ndarray, peak_dbfs: float) -> np.ndarray:
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak <= 0:
        raise ValueError("render is silent")
    return (audio * (10 ** (peak_dbfs / 20) / peak)).astype(np.float32)
