"""OmniCodec: SEANet encoder -> residual vector quantizer -> SEANet decoder, 24 kHz mono.

    wav [B, 1, T] --encoder--> z [B, D, T/hop] --RVQ--> codes [B, K, T/hop] --lookup--> z_q --decoder--> wav'

The public surface other stages use (tokens, Lyra sampling) is `encode`, `decode`, `bitrate` and
the attributes sample_rate / frame_rate / num_codebooks / codebook_size / hop_length.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from components.omnicodec.config import CodecModelConfig
from components.omnicodec.quantizer import QuantizerOutput, ResidualVectorQuantizer
from components.omnicodec.seanet import Decoder, Encoder

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


class OmniCodec(nn.Module):
    def __init__(self, config: CodecModelConfig):
        super().__init__()
        self.config = config
        arch = dict(patch_size=config.patch_size, strides=config.strides, latent_dim=config.latent_dim,
                    dilations=config.residual_dilations, kernel_size=config.residual_kernel_size, act=config.activation,
                    compress=config.residual_compress)
        self.encoder = Encoder(channels=config.channels, **arch)
        self.quantizer = ResidualVectorQuantizer(
            latent_dim=config.latent_dim, num_codebooks=config.num_codebooks, codebook_size=config.codebook_size,
            codebook_dim=config.codebook_dim, quantizer_dropout=config.quantizer_dropout,
            decay=config.codebook_decay, lookup_metric=config.code_lookup, centring=config.code_centring,
        )
        self.decoder = Decoder(channels=config.decoder_channels, upsampling=config.upsampling,
                               output_stage=config.output_stage, **arch)

    # ---- the attributes other stages rely on ----------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def frame_rate(self) -> float:
        return self.config.frame_rate

    @property
    def num_codebooks(self) -> int:
        return self.config.num_codebooks

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    def bitrate(self, n_quantizers: int | None = None) -> float:
        """Bits per second at `n_quantizers` codebooks (default all K)."""
        return self.config.bitrate_kbps(n_quantizers) * 1000.0

    # ---- coding ---------------------------------------------------------------------------------
    def pad_to_hop(self, wav: torch.Tensor) -> torch.Tensor:
        """Right-pad [B, 1, T] with zeros to a whole number of frames."""
        remainder = wav.shape[-1] % self.hop_length
        return F.pad(wav, (0, self.hop_length - remainder)) if remainder else wav

    def _check_wav(self, wav: torch.Tensor) -> None:
        if wav.dim() != 3 or wav.shape[1] != 1:
            raise ValueError(f"expected mono audio [B, 1, T], got {tuple(wav.shape)}")

    @torch.no_grad()
    def encode(self, wav: torch.Tensor, n_quantizers: int | None = None) -> torch.Tensor:
        """wav [B, 1, T] at `sample_rate` -> codes LongTensor [B, n_quantizers or K, ceil(T / hop)]."""
        self._check_wav(wav)
        z = self.encoder(self.pad_to_hop(wav))
        return self.quantizer.encode(z.float(), n_quantizers)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, K', frames] (the first K' <= K codebooks) -> wav [B, 1, frames * hop]."""
        return self.decoder(self.quantizer.decode(codes.long()))

    @torch.no_grad()
    def autoencode(self, wav: torch.Tensor) -> torch.Tensor:
        """wav [B, 1, T] -> decoder(encoder(wav)) without quantization [B, 1, T']: the quality ceiling
        that no number of codebooks can pass (evaluation reports it next to the per-bitrate rows)."""
        self._check_wav(wav)
        return self.decoder(self.encoder(self.pad_to_hop(wav)))

    def forward(self, wav: torch.Tensor, n_quantizers: int | torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, QuantizerOutput]:
        """Training pass: wav [B, 1, T] -> (reconstruction [B, 1, T], quantizer output incl. losses)."""
        self._check_wav(wav)
        length = wav.shape[-1]
        z = self.encoder(self.pad_to_hop(wav))
        q = self.quantizer(z, n_quantizers, generator)
        return self.decoder(q.z_q)[..., :length], q

    # ---- codebook maintenance (called by the trainer) -------------------------------------------
    @torch.no_grad()
    def initialize_codebooks(self, wavs: list[torch.Tensor], kmeans_iters: int,
                             generator: torch.Generator | None = None) -> None:
        """k-means data initialisation of every codebook from encoder latents of real crops [B, 1, T]."""
        z = torch.cat([self.encoder(self.pad_to_hop(w)).float() for w in wavs], dim=0)
        self.quantizer.initialize_from_data(z, kmeans_iters, generator)

    def replace_dead_codes(self, threshold: float, generator: torch.Generator | None = None) -> dict:
        return self.quantizer.replace_dead_codes(threshold, generator)

    # ---- persistence ----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike, *, extra_config: dict | None = None) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE))
        payload = {"model_type": "omnicodec", **self.config.model_dump(mode="json"), **(extra_config or {})}
        (directory / CONFIG_FILE).write_text(json.dumps(payload, indent=2) + "\n")

    @torch.no_grad()
    def fuse_weight_norm(self) -> "OmniCodec":
        """Bake weight-norm parametrizations into plain weights (inference is then a bit faster)."""
        from torch.nn.utils import parametrize

        for module in list(self.modules()):  # a snapshot: removing parametrizations edits the tree
            if parametrize.is_parametrized(module, "weight"):
                weight = module.weight.detach().clone()
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
                if not isinstance(module.weight, nn.Parameter):  # under no_grad it comes back a plain tensor
                    del module.weight
                    module.register_parameter("weight", nn.Parameter(weight))
        return self


def read_model_config(model_dir: str | os.PathLike) -> tuple[CodecModelConfig, dict]:
    """config.json -> (architecture, the other keys such as init_seed)."""
    path = Path(model_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir}: no {CONFIG_FILE}; is this an OmniCodec model folder?")
    raw = json.loads(path.read_text())
    raw.setdefault("upsampling", "transposed")    # folders written before the options existed
    raw.setdefault("output_stage", "patches")
    fields = set(CodecModelConfig.model_fields)
    return CodecModelConfig(**{k: v for k, v in raw.items() if k in fields}), {k: v for k, v in raw.items() if k not in fields}


def load_codec(model_dir: str | os.PathLike, *, device: str | torch.device = "cpu") -> OmniCodec:
    """Load a trained OmniCodec from its folder (model.safetensors + config.json), in eval mode."""
    config, _ = read_model_config(model_dir)
    weights = Path(model_dir) / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{model_dir}: no {WEIGHTS_FILE}")
    codec = OmniCodec(config)
    codec.load_state_dict(load_file(str(weights)))
    return codec.to(device).eval()


def build_codec(config: CodecModelConfig, seed: int) -> OmniCodec:
    """A freshly initialised codec; the same seed gives the same weights (the 'untrained' baseline)."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return OmniCodec(config)
    finally:
        torch.random.set_rng_state(state)
