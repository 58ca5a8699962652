import math

import pytest
import torch

from components.omnicodec import load_codec
from components.omnicodec.bitrate import bitrate_bps, bitrate_kbps, bits_per_code, frame_rate
from components.omnicodec.config import CodecModelConfig
from components.omnicodec.model import build_codec


def test_bitrate_arithmetic():
    assert frame_rate(24_000, 480) == 50.0
    assert bits_per_code(1024) == 10.0
    assert bitrate_bps(24_000, 480, 4, 1024) == 2000.0  # 50 Hz x 4 codebooks x 10 bits
    assert bitrate_kbps(24_000, 320, 8, 1024) == 6.0     # EnCodec's 75 Hz layout at 8 codebooks
    assert math.isclose(bitrate_bps(24_000, 480, 3, 500), 50 * 3 * math.log2(500))
    with pytest.raises(ValueError):
        bitrate_bps(24_000, 480, 0, 1024)
    with pytest.raises(ValueError):
        bits_per_code(1)


def test_default_layout_is_2kbps_at_50hz():
    for cfg in (CodecModelConfig(), CodecModelConfig.gpu_default()):
        assert cfg.hop_length == 480 and cfg.frame_rate == 50.0
        assert cfg.bitrate_kbps() == 2.0 and cfg.bitrate_kbps(1) == 0.5


def test_encode_decode_shapes(small_model_config):
    codec = build_codec(small_model_config, seed=0).eval()
    hop, k = codec.hop_length, codec.num_codebooks
    wav = 0.1 * torch.randn(2, 1, 5 * hop + 17)  # not a whole number of frames: padded
    codes = codec.encode(wav)
    assert codes.dtype == torch.long and codes.shape == (2, k, 6)
    assert 0 <= int(codes.min()) and int(codes.max()) < codec.codebook_size
    assert codec.decode(codes).shape == (2, 1, 6 * hop)
    fewer = codec.encode(wav, n_quantizers=2)
    assert fewer.shape == (2, 2, 6)
    assert torch.equal(fewer, codes[:, :2])  # residual stages: a prefix of the full stream
    assert codec.decode(fewer).shape == (2, 1, 6 * hop)
    assert codec.bitrate(2) == 2 * codec.bitrate(1)
    with pytest.raises(ValueError):
        codec.encode(wav, n_quantizers=k + 1)
    with pytest.raises(ValueError):
        codec.encode(wav[:, 0])  # [B, T] is not [B, 1, T]


def test_autoencode_skips_only_the_quantizer(small_model_config):
    codec = build_codec(small_model_config, seed=0).eval()
    wav = 0.1 * torch.randn(1, 1, 8 * codec.hop_length)
    with torch.no_grad():
        assert torch.equal(codec.autoencode(wav), codec.decoder(codec.encoder(wav)))
    assert not torch.allclose(codec.autoencode(wav), codec.decode(codec.encode(wav)))


def test_fewer_codebooks_decode_differently(small_model_config):
    codec = build_codec(small_model_config, seed=0).eval()
    codes = codec.encode(0.1 * torch.randn(1, 1, 8 * codec.hop_length))
    assert not torch.allclose(codec.decode(codes[:, :1]), codec.decode(codes))


def test_same_seed_same_weights_and_save_load_round_trip(small_model_config, tmp_path):
    a, b = build_codec(small_model_config, 3), build_codec(small_model_config, 3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    other = build_codec(small_model_config, 4)
    assert not all(torch.equal(x, y) for x, y in zip(other.state_dict().values(), a.state_dict().values()))
    a.save_pretrained(tmp_path / "m", extra_config={"init_seed": 3})
    loaded = load_codec(tmp_path / "m")
    assert not loaded.training
    assert (loaded.sample_rate, loaded.frame_rate, loaded.num_codebooks, loaded.codebook_size, loaded.hop_length) == \
        (24_000, 50.0, 3, 64, 480)
    wav = 0.1 * torch.randn(1, 1, 4 * 480)
    assert torch.equal(loaded.encode(wav), a.eval().encode(wav))
    fused = load_codec(tmp_path / "m").fuse_weight_norm()
    conv_weights = [n for n, _ in fused.named_parameters() if n.endswith(".weight")]
    assert conv_weights and not any("parametrizations" in n for n, _ in fused.named_parameters())
    assert torch.allclose(fused.decode(loaded.encode(wav)), loaded.decode(loaded.encode(wav)), atol=1e-5)


@pytest.mark.parametrize("stride", [2, 3, 4, 5])
def test_upsampling_starts_as_interpolation_so_a_constant_latent_gives_no_drone(stride):
    """A constant input must not come out as a pattern repeating every frame (a frame-rate buzz)."""
    from components.omnicodec.layers import wn_conv_transpose1d

    torch.manual_seed(0)
    conv = wn_conv_transpose1d(8, 4, stride)
    with torch.no_grad():
        out = conv(torch.randn(1, 8, 1).expand(1, 8, 20))            # the same vector in every frame
    interior = out[..., 2 * stride:-2 * stride]
    assert out.shape[-1] == 20 * stride
    assert interior.std(dim=-1).max() < 1e-5 * interior.abs().max()  # constant in time, channel by channel
    assert interior.abs().max() > 0.1                                  # ...and not zero


def test_resize_conv_upsampling_cannot_learn_a_drone():
    """Whatever its weights, nearest-repeat + conv maps a constant input to a constant output."""
    from components.omnicodec.layers import upsampling_conv

    torch.manual_seed(0)
    up = upsampling_conv(8, 4, 5, "nearest")
    with torch.no_grad():
        for p in up.parameters():
            p.normal_()                                                # any "trained" weights
        out = up(torch.randn(1, 8, 1).expand(1, 8, 20))
    interior = out[..., 5:-5]
    assert out.shape[-1] == 100
    assert interior.std(dim=-1).max() < 1e-5 * interior.abs().max()


def test_interpolating_output_stage_has_no_phase_images_and_old_folders_keep_patches(small_model_config, tmp_path):
    """The unfolded-patches output gives each of its P output phases its own conv outputs, so a decoder
    feature that is smooth in time comes out with images around multiples of sr/P; interpolating
    first cannot: whatever the weights, a constant feature map gives a constant waveform."""
    import json

    from components.omnicodec.seanet import Decoder

    torch.manual_seed(0)
    arch = dict(patch_size=4, channels=16, strides=[2, 3], latent_dim=8, dilations=[1], kernel_size=3, act="elu",
                upsampling="nearest")
    for stage, constant in (("interpolate", True), ("patches", False)):
        decoder = Decoder(output_stage=stage, **arch)
        with torch.no_grad():
            for p in decoder.parameters():
                p.normal_(std=0.3)                                     # any "trained" weights
            wav = decoder(torch.randn(1, 8, 1).expand(1, 8, 12))       # the same latent every frame
        interior = wav[0, 0, 100:-100]
        assert wav.shape == (1, 1, 12 * 24)
        assert (interior.std() < 1e-4 * interior.abs().max()) == constant
    assert build_codec(small_model_config, seed=0).config.output_stage == "interpolate"   # the default for new codecs
    build_codec(small_model_config.model_copy(update={"output_stage": "patches"}), seed=0).save_pretrained(tmp_path / "old")
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    del config["output_stage"]                                         # a folder from before the option
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    assert load_codec(tmp_path / "old").config.output_stage == "patches"
