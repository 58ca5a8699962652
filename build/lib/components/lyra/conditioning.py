"""The model scoring itself: caption retrieval by Lyra's own likelihood (a diagnostic).

n prompts, each a held-out caption: for a piece of music (the prompt's real held-out clip, or a
generation from the prompt) the model scores its codes under every prompt's text; the prompt under
which they are likeliest is "retrieved":

    nll[i, j] = mean cross-entropy of piece i's codes given prompt j's text        [n, n]
    retrieval accuracy = mean_i [argmin_j nll[i, j] == i]          chance = 1/n
    caption gap        = mean_i (mean_{j != i} nll[i, j] - nll[i, i])   > 0 when the text helps

This is self-consistency, not evidence that the music carries the prompt: on generations the
model grades what it made itself. Whether the prompt reaches the music is judged by the
conditioning judge (components/judge), trained apart from Lyra on real music only.
"""

from __future__ import annotations


import numpy as np
import torch
import torch.nn.functional as F

from components.lyra.conditioners import Conditions
from components.lyra.delay import build_delay_pattern, shift_right


# -------------------------------------------------------------------- likelihood retrieval
@torch.no_grad()
def caption_nll_matrix(model, pieces: list[np.ndarray], texts: np.ndarray, seconds_start: np.ndarray,
                       seconds_total: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """nll[i, j]: mean cross-entropy per code of piece i (codes [K, T], first window only) given
    text j (texts [n_texts, D]) and piece i's own timing. Returns float64 [n_pieces, n_texts]."""
    cfg = model.config
    W, special = cfg.window_frames, cfg.special_id
    device = next(model.parameters()).device
    frames = torch.full((len(pieces), cfg.num_codebooks, W), special, dtype=torch.long)
    for i, codes in enumerate(pieces):
        piece = torch.from_numpy(np.array(codes[:, :W], dtype=np.int64))   # a copy: shard codes are read-only memmaps
        frames[i, :, :piece.shape[1]] = piece
    delayed = build_delay_pattern(frames, special)                         # [n, K, S]
    inputs, labels = shift_right(delayed, special), delayed.masked_fill(delayed == special, -100)
    texts_t = torch.as_tensor(np.asarray(texts, dtype=np.float32))
    pairs = [(i, j) for i in range(len(pieces)) for j in range(len(texts_t))]
    nll = np.zeros((len(pieces), len(texts_t)))
    was_training = model.training
    model.eval()
    for b in range(0, len(pairs), batch_size):
        rows, cols = map(list, zip(*pairs[b:b + batch_size]))
        conditions = Conditions(text=texts_t[cols].to(device),
                                seconds_start=torch.as_tensor(seconds_start[rows], dtype=torch.float32, device=device),
                                seconds_total=torch.as_tensor(seconds_total[rows], dtype=torch.float32, device=device))
        logits = model(codes=inputs[rows].to(device), conditions=conditions).logits.float()   # [b, K, S, V+1]
        target = labels[rows].to(device)
        ce = F.cross_entropy(logits.permute(0, 3, 1, 2), target, ignore_index=-100, reduction="none")  # [b, K, S]
        scored = (target != -100).sum(dim=(1, 2)).clamp_min(1)
        nll[rows, cols] = (ce.sum(dim=(1, 2)) / scored).double().cpu().numpy()
    model.train(was_training)
    return nll


def retrieval_accuracy(nll: np.ndarray, texts: np.ndarray) -> tuple[float, float]:
    """(accuracy, chance): share of pieces i whose likeliest text is their own text i (or the same
    embedding at another column, e.g. a repeated caption), and what a random column would score."""
    n = nll.shape[0]
    if n == 0:
        return float("nan"), float("nan")
    texts = np.asarray(texts, dtype=np.float64)
    same = np.abs(texts[:n, None, :] - texts[None, :, :]).max(axis=-1) < 1e-6   # [n, n_texts]
    hits = same[np.arange(n), nll.argmin(axis=1)]
    return float(np.mean(hits)), float(np.mean(same.sum(axis=1) / same.shape[1]))


def caption_gap(nll: np.ndarray) -> float:
    """Mean over pieces of (mean NLL under the other texts - NLL under their own), in nats per code."""
    n = nll.shape[0]
    if n < 2:
        return float("nan")
    own = np.diag(nll)
    others = (nll.sum(axis=1) - own) / (nll.shape[1] - 1)
    return float(np.mean(others - own))
