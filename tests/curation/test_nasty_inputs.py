"""Integration: a folder of hostile inputs through `lyra curate`; nothing crashes, nothing disappears."""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from components.cli import main as lyra
from components.common.audio import resample
from components.curation.discover import discover

from .conftest import synth_music

SR = 24_000
CURATED = "curated"

# file -> the reason it must be quarantined with, or CURATED when it must yield manifest rows
EXPECTED = {
    "a_music.wav": CURATED,                     # 44.1 kHz stereo, sidecar with piece_id + split
    "z_dup_quiet.wav": "duplicate",             # a_music at -12 dB, 48 kHz mono: every clip a duplicate
    "six_channel.flac": CURATED,                # 6 channels, 44.1 kHz
    "low_rate.mp3": CURATED,                    # 8 kHz mono mp3
    "vorbis.ogg": CURATED,                      # 22.05 kHz ogg
    "nested/deeper/inner.wav": CURATED,         # found in a nested subfolder
    "naïve chanson ♪.wav": CURATED,             # non-ASCII name
    "latin1 caf\ufffd.wav": CURATED,            # a name that is not valid UTF-8 (b"caf\xe9")
    "broken_sidecar.wav": "bad_sidecar",        # good audio, unreadable <stem>.json
    "corrupt_header.wav": "corrupt",
    "empty.wav": "empty",                       # 0 bytes
    "truncated.wav": "truncated",               # header promises twice the data
    "truncated.flac": "truncated",
    "truncated.ogg": "truncated",
    "text_renamed.wav": "not_audio",
    "picture.png": "unsupported_format",
    "picture_renamed.mp3": "not_audio",
    "silent.wav": "silent",
    "dc_offset.wav": "no_content",              # a constant +0.3: loud, but nothing to hear
    "one_value.flac": "no_content",             # the same int16 sample value, repeated, in stereo
    "sub_audible.wav": "no_content",            # a 4 Hz sine at -6 dBFS with a DC offset
    "nan.wav": "non_finite",                    # float wav with NaNs
    "blip.wav": "too_short",                    # 0.05 s
    "long.wav": "too_long",                     # 70 s > max_file_s=60 (set below)
    "zero_channels.wav": "bad_shape",
    "seventy_channels.wav": "bad_shape",        # > max_channels=64
    "clipped.wav": "clipped",                   # hard-clipped at 26 dB of overdrive
    "dangling_link.wav": "unreadable",          # a symlink to nowhere
    "notes.txt": "unsupported_format",
    "orphan.json": "unsupported_format",        # a .json with no audio beside it is not a sidecar
}


def _wav_bytes(channels: int, frames: bytes) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, channels, SR, SR * 2 * max(channels, 1), 2 * max(channels, 1), 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(frames)) + frames
    return b"RIFF" + struct.pack("<I", len(body)) + body


def build_nasty_folder(root) -> None:
    root.mkdir()
    a = synth_music(25.0, seed=1)
    stereo = np.stack([a, 0.8 * a], axis=1)
    sf.write(root / "a_music.wav", resample(stereo.T, SR, 44_100).T, 44_100, subtype="PCM_16")
    (root / "a_music.json").write_text(json.dumps({"piece_id": "piece-a", "split": "valid", "title": "A tune",
                                                   "program": 0, "tempo_bpm": 96}))
    sf.write(root / "z_dup_quiet.wav", resample(a * 10 ** (-12 / 20), SR, 48_000), 48_000, subtype="PCM_16")
    six = np.stack([synth_music(12.0, seed=2) * g for g in (1, 0.9, 0.8, 0.7, 0.6, 0.5)], axis=1)
    sf.write(root / "six_channel.flac", resample(six.T, SR, 44_100).T, 44_100)
    sf.write(root / "low_rate.mp3", resample(synth_music(12.0, seed=3), SR, 8_000), 8_000, format="MP3")
    sf.write(root / "vorbis.ogg", resample(synth_music(12.0, seed=4), SR, 22_050), 22_050, format="OGG")
    (root / "nested" / "deeper").mkdir(parents=True)
    sf.write(root / "nested" / "deeper" / "inner.wav", synth_music(8.0, seed=5), SR, subtype="PCM_16")
    sf.write(root / "naïve chanson ♪.wav", synth_music(4.0, seed=12), SR, subtype="PCM_16")
    with open(root / os.fsdecode(b"latin1 caf\xe9.wav"), "wb") as fh:
        sf.write(fh, synth_music(4.0, seed=13), SR, subtype="PCM_16", format="WAV")
    sf.write(root / "broken_sidecar.wav", synth_music(6.0, seed=6), SR, subtype="PCM_16")
    (root / "broken_sidecar.json").write_text('{"piece_id": "x", "split": ')
    short_fmt_chunk = b"RIFF\x24\x00\x00\x00WAVEfmt \x02\x00\x00\x00\x01\x00"  # fmt needs 16 bytes, says 2
    (root / "corrupt_header.wav").write_bytes(short_fmt_chunk + bytes(range(64)))
    (root / "empty.wav").write_bytes(b"")
    sf.write(root / "full.wav", synth_music(6.0, seed=7), SR, subtype="PCM_16")
    full = (root / "full.wav").read_bytes()
    (root / "truncated.wav").write_bytes(full[: len(full) // 2])
    (root / "full.wav").unlink()
    for ext, fmt in (("flac", "FLAC"), ("ogg", "OGG")):
        sf.write(root / f"full.{ext}", synth_music(8.0, seed=8), SR, format=fmt)
        data = (root / f"full.{ext}").read_bytes()
        (root / f"truncated.{ext}").write_bytes(data[: len(data) // 2])
        (root / f"full.{ext}").unlink()
    (root / "text_renamed.wav").write_text("this is a shopping list, not a song\n" * 20)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.imsave(root / "picture.png", np.random.default_rng(0).random((16, 16)))
    (root / "picture_renamed.mp3").write_bytes((root / "picture.png").read_bytes())
    sf.write(root / "silent.wav", np.zeros(5 * SR, dtype=np.float32), SR, subtype="PCM_16")
    sf.write(root / "dc_offset.wav", np.full(6 * SR, 0.3, dtype=np.float32), SR, subtype="PCM_16")
    sf.write(root / "one_value.flac", np.full((6 * 44_100, 2), -12_000, dtype=np.int16), 44_100)
    t = np.arange(8 * SR) / SR
    sf.write(root / "sub_audible.wav", (0.5 * np.sin(2 * np.pi * 4 * t) + 0.1).astype(np.float32), SR,
             subtype="PCM_16")
    nan = synth_music(5.0, seed=9)
    nan[1000:3000] = np.nan
    sf.write(root / "nan.wav", nan, SR, subtype="FLOAT")
    sf.write(root / "blip.wav", synth_music(0.05, seed=10), SR, subtype="PCM_16")
    sf.write(root / "long.wav", np.full(70 * 8_000, 0.1, dtype=np.float32), 8_000, subtype="PCM_16")
    (root / "zero_channels.wav").write_bytes(_wav_bytes(0, bytes(2000)))
    sf.write(root / "seventy_channels.wav", np.zeros((SR // 2, 70), dtype=np.float32), SR, subtype="PCM_16")
    sf.write(root / "clipped.wav", np.clip(synth_music(12.0, seed=11) * 20, -1, 1), SR, subtype="PCM_16")
    (root / "dangling_link.wav").symlink_to(root / "gone.wav")
    (root / "notes.txt").write_text("recorded in the kitchen\n")
    (root / "orphan.json").write_text(json.dumps({"title": "nobody's sidecar"}))


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    base = tmp_path_factory.mktemp("nasty")
    build_nasty_folder(base / "input")
    params = base / "params.yaml"
    params.write_text("profile: tiny\n")
    rc = lyra(["curate", "--input", str(base / "input"), "--out", str(base / "out"), "--metrics",
               str(base / "metrics.json"), "--params", str(params),
               "--set", "max_file_s=60", "--set", "workers=2"])
    assert rc == 0
    return {
        "input": base / "input", "out": base / "out",
        "manifest": pd.read_parquet(base / "out" / "manifest.parquet"),
        "quarantine": pd.read_parquet(base / "out" / "quarantine.parquet"),
        "metrics": json.loads((base / "metrics.json").read_text()),
    }


def test_every_input_file_is_accounted_for(curated):
    inputs, sidecars = discover(curated["input"])
    rels = {i.rel for i in inputs}
    assert rels == set(EXPECTED), "the fixture and the expectations disagree"
    assert {s.name for s in sidecars} == {"a_music.json", "broken_sidecar.json"}
    accounted = set(curated["manifest"]["source_file"]) | set(curated["quarantine"]["source_file"])
    assert rels <= accounted
    assert curated["metrics"]["files_in"] == len(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_file_gets_its_expected_fate(curated, name):
    manifest, quarantine = curated["manifest"], curated["quarantine"]
    rows = quarantine[quarantine["source_file"] == name]
    if EXPECTED[name] == CURATED:
        assert (manifest["source_file"] == name).any()
        assert rows.empty, rows.to_dict("records")
    else:
        assert EXPECTED[name] in set(rows["reason"]), rows.to_dict("records")
        assert rows["detail"].str.len().min() > 0


def test_whole_file_rejects_have_no_clips(curated):
    manifest, quarantine = curated["manifest"], curated["quarantine"]
    whole = quarantine[quarantine["clip_id"] == ""]
    assert not set(whole["source_file"]) & set(manifest["source_file"])


def test_duplicate_names_the_clip_it_duplicates(curated):
    manifest, quarantine = curated["manifest"], curated["quarantine"]
    dups = quarantine[quarantine["source_file"] == "z_dup_quiet.wav"]
    assert len(dups) == 3 and set(dups["reason"]) == {"duplicate"}  # 25 s -> 10 + 10 + 5 s, all duplicates
    originals = set(manifest.loc[manifest["source_file"] == "a_music.wav", "clip_id"])
    for clip_id, detail in zip(dups["clip_id"], dups["detail"]):
        named = [c for c in originals if c in detail]
        assert named and clip_id[-3:] == named[0][-3:]  # segment k duplicates segment k
    assert not (curated["out"] / "clips" / f"{dups['clip_id'].iloc[0]}.wav").exists()


def test_manifest_rows_and_clip_files_agree(curated):
    manifest = curated["manifest"]
    written = sorted(p.name for p in (curated["out"] / "clips").iterdir())
    assert written == sorted(f"{c}.wav" for c in manifest["clip_id"])
    for row in manifest.itertuples():
        info = sf.info(curated["out"] / row.path)
        assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
        assert info.frames / SR == pytest.approx(row.duration_s, abs=1e-3)
        assert 2.0 <= row.duration_s <= 10.0
    assert manifest["loudness_lufs"].between(-23.1, -22.9).all()


def test_sidecar_metadata_and_split_are_carried(curated):
    manifest = curated["manifest"]
    a = manifest[manifest["source_file"] == "a_music.wav"]
    assert set(a["piece_id"]) == {"piece-a"} and set(a["split"]) == {"valid"}
    assert set(a["title"]) == {"A tune"} and set(a["program"]) == {0}
    assert json.loads(a["meta"].iloc[0])["tempo_bpm"] == 96
    inner = manifest[manifest["source_file"] == "nested/deeper/inner.wav"]
    assert set(inner["piece_id"]) == {"nested/deeper/inner"}  # no sidecar: piece = the path less its extension
    assert inner["split"].iloc[0] in {"train", "valid", "test"}


def test_clipping_is_measured_and_bounded(curated):
    quarantine = curated["quarantine"]
    clipped = quarantine[(quarantine["source_file"] == "clipped.wav") & (quarantine["reason"] == "clipped")]
    assert len(clipped) >= 1 and (clipped["clip_id"] != "").all()
    assert (curated["manifest"]["clipped_fraction"] <= 0.01).all()


def test_metrics_and_expectations_are_recorded(curated):
    metrics = curated["metrics"]
    by_reason = metrics["quarantined_by_reason"]
    assert by_reason["duplicate"] == 3 and by_reason["truncated"] == 3 and by_reason["unsupported_format"] == 3
    assert metrics["files_curated"] == sum(v == CURATED for v in EXPECTED.values())
    assert metrics["clips"] == len(curated["manifest"])
    assert metrics["ge_manifest_success"] is True and metrics["ge_quarantine_success"] is True
    assert metrics["x_realtime"] > 0 and metrics["workers"] == 2


def test_bad_folders_get_a_clear_error_and_nothing_is_written(tmp_path, capsys):
    assert lyra(["curate", "--input", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert "input folder not found" in capsys.readouterr().err
    (tmp_path / "in").mkdir()
    assert lyra(["curate", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "in" / "out")]) == 2
    assert "inside the input folder" in capsys.readouterr().err
    assert lyra(["curate", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "out2")]) == 2
    assert "no input files" in capsys.readouterr().err
    assert not (tmp_path / "out2").exists()


def test_a_failed_suite_is_recorded_but_does_not_fail_the_command(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "only.json").write_text("{}")  # an orphan sidecar: quarantined, so the manifest is empty
    metrics = tmp_path / "m.json"
    argv = ["curate", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--metrics", str(metrics)]
    assert lyra(argv) == 0
    recorded = json.loads(metrics.read_text())
    assert recorded["ge_manifest_success"] is False and recorded["ge_quarantine_success"] is True
    assert pd.read_parquet(tmp_path / "out" / "quarantine.parquet")["reason"].tolist() == ["unsupported_format"]
    assert pd.read_parquet(tmp_path / "out" / "manifest.parquet").empty

