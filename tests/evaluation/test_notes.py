"""basic-pitch's note statistics: the transcriber hears the notes of a synthetic melody, and the statistics and
their drift count what they are given."""

import numpy as np

from components.evaluation.notes import NoteReader, drift, note_statistics


def test_basic_pitch_transcribes_a_three_note_melody():
    rate = 22_050
    melody = []
    for midi in (69, 72, 76):                         # A4, C5, E5, half a second each, with a short decay
        t = np.arange(int(0.5 * rate)) / rate
        melody.append(0.4 * np.sin(2 * np.pi * 440 * 2 ** ((midi - 69) / 12) * t) * np.exp(-2 * t))
    notes = NoteReader().transcribe(np.concatenate(melody).astype(np.float32), rate)
    heard = {p for _, _, p in notes}
    assert {69, 72, 76} <= heard, notes
    starts = sorted(s for s, _, p in notes if p in (69, 72, 76))
    assert starts[0] < 0.15 and any(0.4 < s < 0.65 for s in starts) and any(0.9 < s < 1.15 for s in starts)


def test_note_statistics_count_density_range_and_polyphony():
    chord_then_note = [(0.0, 1.0, 60), (0.0, 1.0, 64), (0.0, 1.0, 67), (1.0, 2.0, 72)]
    density, pitch_range, polyphony, mean_pitch = note_statistics(chord_then_note, 2.0)
    assert density == 2.0 and pitch_range == 12 and abs(polyphony - 2.0) < 0.02 and mean_pitch == 65.75
    assert note_statistics([], 2.0)[:3] == [0.0, 0.0, 0.0]


def test_drift_finds_a_shift_and_not_its_absence():
    rng = np.random.default_rng(0)
    real = rng.normal(3.0, 0.5, (40, 4))
    same, shifted = drift(real, rng.normal(3.0, 0.5, (40, 4))), drift(real, rng.normal(4.0, 0.5, (40, 4)))
    assert same["density"]["difference_interval95"][0] < 0 < same["density"]["difference_interval95"][1]
    assert shifted["density"]["difference_interval95"][0] > 0.5
