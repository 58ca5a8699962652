"""MusicGen's delay pattern: one autoregressive step per frame, codebook k lagging k steps.

Codes of K codebooks over T frames (`a..d` are frames 0..3 of codebook 0, `A..D` of codebook 1,
and so on) are laid out so that, at step s, the model predicts codebook 0 of frame s, codebook 1
of frame s-1, ..., codebook K-1 of frame s-K+1. Each codebook is then predicted after the
coarser codebooks of the same frame are already known, at the cost of only K-1 extra steps:

    frames (K=4, T=4)            delayed (K=4, T+K-1 = 7 steps), _ = SPECIAL

    k=0   a b c d                k=0   a b c d _ _ _
    k=1   A B C D        ->      k=1   _ A B C D _ _
    k=2   α β γ δ                k=2   _ _ α β γ δ _
    k=3   1 2 3 4                k=3   _ _ _ 1 2 3 4
                                 step  0 1 2 3 4 5 6

The transformer's input at step s is the delayed column s-1 (a column of SPECIAL at s=0, the
"beginning of sequence"); its K heads predict column s. `revert_delay_pattern` undoes the shift.
"""

from __future__ import annotations

import torch


def delay_valid_mask(num_codebooks: int, num_frames: int, device=None) -> torch.Tensor:
    """[K, T+K-1] bool: True where the delayed layout holds a real frame (not SPECIAL)."""
    steps = torch.arange(num_frames + num_codebooks - 1, device=device)
    frame = steps[None, :] - torch.arange(num_codebooks, device=device)[:, None]   # [K, S]: frame at (k, s)
    return (frame >= 0) & (frame < num_frames)


def build_delay_pattern(codes: torch.Tensor, special: int) -> torch.Tensor:
    """[..., K, T] codes -> [..., K, T+K-1] delayed codes, SPECIAL where no frame falls."""
    *lead, K, T = codes.shape
    steps = torch.arange(T + K - 1, device=codes.device)
    frame = steps[None, :] - torch.arange(K, device=codes.device)[:, None]          # [K, S]
    valid = (frame >= 0) & (frame < T)
    index = frame.clamp(0, T - 1).expand(*lead, K, T + K - 1)
    delayed = torch.gather(codes, -1, index)
    return torch.where(valid, delayed, torch.full_like(delayed, special))


def revert_delay_pattern(delayed: torch.Tensor) -> torch.Tensor:
    """[..., K, S] delayed codes -> [..., K, S-K+1] frames (codebook k read k steps later)."""
    *lead, K, S = delayed.shape
    T = S - K + 1
    if T < 0:
        raise ValueError(f"{S} steps cannot hold {K} delayed codebooks")
    index = torch.arange(T, device=delayed.device)[None, :] + torch.arange(K, device=delayed.device)[:, None]
    return torch.gather(delayed, -1, index.expand(*lead, K, T))


def shift_right(delayed: torch.Tensor, special: int) -> torch.Tensor:
    """Model inputs from targets: column s of the result is column s-1 of `delayed`, SPECIAL first."""
    start = torch.full_like(delayed[..., :1], special)
    return torch.cat([start, delayed[..., :-1]], dim=-1)
