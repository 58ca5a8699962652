"""References in odd formats are read; silent, short, corrupt or non-audio ones are refused by name."""

import numpy as np
import pytest
import soundfile as sf

from components.influence.reference_audio import ReferenceAudioError, read_reference

SR = 24_000


def tone(seconds: float, sr: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 330 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
    return np.stack([x] * channels, axis=1).astype(np.float32)


@pytest.mark.parametrize("name,sr,channels,fmt,subtype", [
    ("stereo_44k.wav", 44_100, 2, "WAV", "PCM_16"),
    ("six_channels_48k.flac", 48_000, 6, "FLAC", "PCM_24"),
    ("mono_22k.ogg", 22_050, 1, "OGG", "VORBIS"),
    ("float_8k.wav", 8_000, 1, "WAV", "FLOAT"),
])
def test_any_format_rate_and_channel_count_is_read(tmp_path, name, sr, channels, fmt, subtype):
    path = tmp_path / name
    sf.write(path, tone(5.0, sr, channels), sr, format=fmt, subtype=subtype)
    excerpt = read_reference(path, SR, 3.0)
    assert excerpt.shape == (3 * SR,) and excerpt.dtype == np.float32
    assert 0.01 < float(np.sqrt(np.mean(excerpt ** 2))) < 1.0        # loudness-normalised, not silent


@pytest.mark.parametrize("make,problem", [
    (lambda p: sf.write(p, np.zeros((5 * SR, 2), np.float32), SR), "silent"),
    (lambda p: sf.write(p, tone(1.0, SR), SR), "too short"),
    (lambda p: p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4), "corrupt"),
    (lambda p: p.write_text("these are the lyrics, not the song\n" * 20), "not audio"),
    (lambda p: p.write_bytes(b""), "empty"),
])
def test_unusable_references_are_refused_with_the_file_and_the_problem(tmp_path, make, problem):
    path = tmp_path / "my song.wav"
    make(path)
    with pytest.raises(ReferenceAudioError) as err:
        read_reference(path, SR, 3.0)
    assert "my song.wav" in str(err.value) and problem in str(err.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ReferenceAudioError, match="nowhere.mp3: no such file"):
        read_reference(tmp_path / "nowhere.mp3", SR, 3.0)


def test_a_truncated_wav_is_refused(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, tone(5.0, SR), SR)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ReferenceAudioError, match="cut.wav: truncated"):
        read_reference(path, SR, 3.0)
