"""What a model over OmniCodec codes (Lyra, Influence, the judge, ORAQL's ladder) needs from the codec: load it,
check it speaks the model's codes, decode generated pieces to audio."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from components.common.errors import LyraError


class CodecMismatch(LyraError, ValueError):
    """The codec does not speak the model's codes (frame rate, codebooks, codebook size)."""


def load_codec(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """An OmniCodec in eval mode (see components.omnicodec)."""
    if not Path(path).is_dir():
        raise FileNotFoundError(f"codec folder {path} does not exist; train one with `lyra codec train`")
    from components.omnicodec import load_codec as load_omnicodec

    return load_omnicodec(path, device=device)


def check_compatible(codec, model_config) -> None:
    if abs(float(codec.frame_rate) - float(model_config.frame_rate)) > 1e-6:
        raise CodecMismatch(f"codec runs at {codec.frame_rate} frames/s, the model at {model_config.frame_rate}")
    for name, want in (("num_codebooks", model_config.num_codebooks), ("codebook_size", model_config.codebook_size)):
        have = getattr(codec, name, None)
        if have is not None and (have < want if name == "num_codebooks" else have != want):
            raise CodecMismatch(f"codec {name}={have}, the model needs {want}")


@torch.no_grad()
def decode_pieces(codec, codes: torch.Tensor, lengths: torch.Tensor) -> list[np.ndarray]:
    """codes [B, K, T] + lengths [B] (frames) -> B mono float32 arrays, each cut at its own length."""
    samples_per_frame = int(round(codec.sample_rate / codec.frame_rate))
    device = next(codec.parameters()).device if hasattr(codec, "parameters") else "cpu"
    valid = codes.clamp(0, int(getattr(codec, "codebook_size", codes.max() + 1)) - 1)   # END/SPECIAL past the end
    audio = codec.decode(valid.to(device)).float().cpu()                                # [B, 1, T * hop]
    return [audio[b, 0, :int(lengths[b]) * samples_per_frame].numpy() for b in range(codes.shape[0])]


def decode_in_batches(codec, pieces, batch_size: int = 16) -> list[np.ndarray]:
    """Pieces of different lengths (each codes [K, T_i], numpy or torch) -> mono float32 audio each.

    Decoded `batch_size` at a time (bounded memory): a batch is zero-padded to its longest piece
    and every output cut back at its own length.
    """
    out = []
    for b in range(0, len(pieces), batch_size):
        part = [torch.as_tensor(np.asarray(p, dtype=np.int64)) for p in pieces[b:b + batch_size]]
        lengths = torch.tensor([int(p.shape[-1]) for p in part])
        grid = torch.zeros(len(part), part[0].shape[0], max(1, int(lengths.max())), dtype=torch.long)
        for j, p in enumerate(part):
            grid[j, :, :p.shape[-1]] = p
        with torch.inference_mode():
            out.extend(decode_pieces(codec, grid, lengths))
    return out
