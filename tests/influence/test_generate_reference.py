"""`lyra generate --reference song.wav ["prompt"]`: music from a reference, clear errors for unusable ones."""

import json

import numpy as np
import soundfile as sf
import torch

from components.cli import main as lyra
from components.influence.train import attach_reference
from tests.influence.conftest import influence_config
from tests.influence.test_reference_audio import tone


def saved_models(tmp_path):
    """A tiny Influence model and the tiny OmniCodec whose codes it speaks (50 Hz at 24 kHz), on disk."""
    from components.lyra.model import LyraConfig, LyraForMusicGeneration
    from components.omnicodec.config import CodecModelConfig
    from components.omnicodec.model import build_codec

    codec = build_codec(CodecModelConfig(channels=4, decoder_channels=32, latent_dim=16, num_codebooks=4,
                                         codebook_size=16, residual_dilations=[1, 3]), seed=0).eval()
    model = LyraForMusicGeneration(LyraConfig(num_codebooks=4, codebook_size=16, hidden_size=32, num_attention_heads=2,
                                              num_hidden_layers=2, window_frames=32, n_text_tokens=1, frame_rate=50.0,
                                              max_seconds=20.0, text_every_step=True))
    reference = attach_reference(model, influence_config(reference_seconds=2.0, token_rate_hz=5.0), codec)
    torch.manual_seed(0)
    for layer in (reference.out, reference.step):          # as after training (a fresh conditioner's outputs are 0)
        torch.nn.init.normal_(layer.weight, std=0.5)
    model.save_pretrained(tmp_path / "influence")
    codec.save_pretrained(tmp_path / "codec")
    return tmp_path / "influence", tmp_path / "codec"


def test_generate_from_a_reference_song(tmp_path, capsys):
    model, codec = saved_models(tmp_path)
    song = tmp_path / "song.flac"
    sf.write(song, tone(4.0, 44_100, channels=2), 44_100)
    base = ["generate", "--reference", str(song), "--seconds", "1", "--model", str(model), "--codec", str(codec),
            "--top-k", "4", "--cfg-reference", "2"]
    assert lyra([*base, "--out", str(tmp_path / "a.wav")]) == 0
    audio, sr = sf.read(tmp_path / "a.wav")
    assert sr == 24_000 and len(audio) == 24_000
    record = json.loads((tmp_path / "a.json").read_text())
    assert record["reference"]["path"].endswith("song.flac") and record["reference"]["excerpt_seconds"] == 2.0
    assert record["sampling"]["cfg_reference"] == 2.0 and "--reference" in record["reproduce"]
    # the reference is read: another song gives other music from the same seed
    other = tmp_path / "other.wav"
    sf.write(other, np.random.default_rng(0).normal(0, 0.1, 4 * 24_000).astype(np.float32), 24_000)
    assert lyra([*base[:2], str(other), *base[3:], "--out", str(tmp_path / "b.wav")]) == 0
    assert not np.array_equal(sf.read(tmp_path / "b.wav")[0], audio)


def test_unusable_references_and_models_are_explained(tmp_path, capsys):
    model, codec = saved_models(tmp_path)
    short = tmp_path / "short.wav"
    sf.write(short, tone(0.5, 24_000), 24_000)
    out = ["--model", str(model), "--codec", str(codec), "--out", str(tmp_path / "x.wav")]
    assert lyra(["generate", "--reference", str(short), *out]) == 2
    assert "short.wav: too short" in capsys.readouterr().err
    text = tmp_path / "notes.mp3"
    text.write_text("not a song")
    assert lyra(["generate", "--reference", str(text), *out]) == 2
    assert "notes.mp3: not audio" in capsys.readouterr().err
    assert lyra(["generate", *out]) == 2                                      # neither a prompt nor a reference
    assert "give a prompt, a --reference song, or both" in capsys.readouterr().err
