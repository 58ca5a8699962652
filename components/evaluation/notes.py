"""Note statistics as drift monitors, from basic-pitch (Spotify's polyphonic transcriber, Apache-2.0), whose ONNX
model ships inside its wheel and runs on onnxruntime. Nobody here trained it either.

    NoteReader().statistics(clips, sample_rate) -> [n, 4] per clip:
        density      notes per second
        range        highest minus lowest transcribed MIDI pitch (0 with fewer than 2 notes)
        polyphony    mean number of sounding notes over the frames where at least one sounds
        mean_pitch   mean MIDI pitch of the notes (nan without notes)
    drift(real, generated)  per statistic: each set's mean, generated - real with a bootstrap interval

basic-pitch's own functions do the work (its windowing, its model wrapper, its note creation); only the file
reading is replaced, so that clips in memory are transcribed without being written out. Its metadata pins an old
TensorFlow, which overrides.txt drops (the ONNX model needs none).
"""

from __future__ import annotations

import logging

import numpy as np

from components.common.stats import bootstrap_interval

STATISTICS = ("density", "range", "polyphony", "mean_pitch")
N_OVERLAPPING_FRAMES = 30       # what basic-pitch's own run_inference uses
MIN_NOTE_MS = 127.70            # basic-pitch's defaults for predict()
ONSET_THRESHOLD, FRAME_THRESHOLD = 0.5, 0.3


def _import_basic_pitch():
    # basic-pitch logs a warning at import for each backend it does not find (TensorFlow, CoreML, TFLite)
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        import basic_pitch
        from basic_pitch import constants, inference, note_creation
    finally:
        logger.setLevel(level)
    return basic_pitch, constants, inference, note_creation


class NoteReader:
    name = "basic-pitch 0.4.0 (ICASSP 2022 model, ONNX)"

    def __init__(self):
        basic_pitch, self.constants, self.inference, self.note_creation = _import_basic_pitch()
        path = basic_pitch.build_icassp_2022_model_path(basic_pitch.FilenameSuffix.onnx)
        self.model = self.inference.Model(path)

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> list[tuple[float, float, int]]:
        """(start s, end s, MIDI pitch) of every note basic-pitch hears in `audio`."""
        import librosa

        c = self.constants
        audio = np.asarray(audio, np.float32).reshape(-1)
        if sample_rate != c.AUDIO_SAMPLE_RATE:      # as its librosa.load would
            audio = librosa.resample(audio, orig_sr=sample_rate, target_sr=c.AUDIO_SAMPLE_RATE, res_type="soxr_hq")
        overlap = N_OVERLAPPING_FRAMES * c.FFT_HOP
        padded = np.concatenate([np.zeros(overlap // 2, np.float32), audio])
        output: dict[str, list] = {"note": [], "onset": [], "contour": []}
        for window, _ in self.inference.window_audio_file(padded, c.AUDIO_N_SAMPLES - overlap):
            for key, value in self.model.predict(window[None]).items():
                output[key].append(value)
        unwrapped = {k: self.inference.unwrap_output(np.concatenate(v), len(audio), N_OVERLAPPING_FRAMES)
                     for k, v in output.items()}
        min_len = int(np.round(MIN_NOTE_MS / 1000 * (c.AUDIO_SAMPLE_RATE / c.FFT_HOP)))
        _, events = self.note_creation.model_output_to_notes(unwrapped, onset_thresh=ONSET_THRESHOLD,
                                                             frame_thresh=FRAME_THRESHOLD, min_note_len=min_len)
        return [(float(start), float(end), int(pitch)) for start, end, pitch, *_ in events]

    def statistics(self, clips: list[np.ndarray], sample_rate: int) -> np.ndarray:
        return np.array([note_statistics(self.transcribe(c, sample_rate), len(c) / sample_rate) for c in clips],
                        dtype=np.float64).reshape(-1, len(STATISTICS))


def note_statistics(notes: list[tuple[float, float, int]], seconds: float, frame_s: float = 0.01) -> list[float]:
    """[density, range, polyphony, mean_pitch] of one clip's notes (see the module doc)."""
    if not notes:
        return [0.0, 0.0, 0.0, float("nan")]
    pitches = np.array([p for _, _, p in notes])
    grid = np.arange(0.0, max(seconds, max(e for _, e, _ in notes)), frame_s)
    sounding = np.zeros(len(grid))
    for start, end, _ in notes:
        sounding[(grid >= start) & (grid < end)] += 1
    active = sounding[sounding > 0]
    return [len(notes) / max(seconds, 1e-9), float(pitches.max() - pitches.min()),
            float(active.mean()) if len(active) else 0.0, float(pitches.mean())]


def drift(real: np.ndarray, generated: np.ndarray, seed: int = 0) -> dict[str, dict]:
    """Per statistic: the real and generated means and generated - real with a 95 % bootstrap interval (each set
    resampled on its own; clips without notes are left out of mean_pitch)."""
    rng = np.random.default_rng(seed)
    out = {}
    for j, name in enumerate(STATISTICS):
        r, g = real[:, j][~np.isnan(real[:, j])], generated[:, j][~np.isnan(generated[:, j])]
        if len(r) < 2 or len(g) < 2:
            out[name] = {"n_real": int(len(r)), "n_generated": int(len(g))}
            continue
        diffs = [rng.choice(g, len(g)).mean() - rng.choice(r, len(r)).mean() for _ in range(1000)]
        lo, hi = float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))
        out[name] = {"real": float(r.mean()), "generated": float(g.mean()), "difference": float(g.mean() - r.mean()),
                     "difference_interval95": [lo, hi], "n_real": int(len(r)), "n_generated": int(len(g)),
                     "real_interval95": list(bootstrap_interval(r, seed=seed))}
    return out
