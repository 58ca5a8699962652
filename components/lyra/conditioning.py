"""Does the text matter? Two measurements, one from the model's likelihood, one independent of it.

Caption retrieval by likelihood (the headline). n prompts, each a held-out caption: for a piece
of music (the prompt's real held-out clip, or a generation from the prompt) the model scores
its codes under every prompt's text; the prompt under which they are likeliest is "retrieved":

    nll[i, j] = mean cross-entropy of piece i's codes given prompt j's text        [n, n]
    retrieval accuracy = mean_i [argmin_j nll[i, j] == i]          chance = 1/n
    caption gap        = mean_i (mean_{j != i} nll[i, j] - nll[i, i])   > 0 when the text helps

On real held-out audio this says the model learned what captions say about music it never saw;
on generations it says each generation carries its own prompt rather than any prompt's content.

The probe (independent of the model, coarse on a tiny corpus):
    a class per clip: its instrument where the corpus records one, else the k-means cluster
    of its caption embedding (no labels needed)
    training clips --features--> logistic-regression probe: features -> class, two of them:
        on codes: per-codebook code histograms (no decoding needed)
        on audio: mean/spread of the log-mel spectrum of the clip decoded by the codec (real clips
                  are decoded too, so both sides carry the same codec artefacts)
    generation prompted with a held-out caption of class c --probe--> c'?   accuracy vs chance

The same prompts generated *without* their text (the unconditional model) are the control: if
conditioning works, conditional accuracy beats both chance and the unconditional accuracy.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from components.lyra.conditioners import Conditions
from components.lyra.delay import build_delay_pattern, shift_right


def code_histogram_features(codes: np.ndarray, codebook_size: int, n_codebooks: int = 2) -> np.ndarray:
    """[K, T] codes -> [n_codebooks * V] square-rooted code frequencies (Hellinger features)."""
    feats = []
    for k in range(min(n_codebooks, codes.shape[0])):
        row = np.asarray(codes[k], dtype=np.int64)
        row = row[(row >= 0) & (row < codebook_size)]
        hist = np.bincount(row, minlength=codebook_size).astype(np.float64)
        feats.append(np.sqrt(hist / max(hist.sum(), 1.0)))
    return np.concatenate(feats)


@dataclasses.dataclass
class CaptionClasses:
    """k-means clusters of caption embeddings; a caption's class is its nearest centroid."""

    centroids: np.ndarray            # [n_classes, D]

    @classmethod
    def fit(cls, embeddings: np.ndarray, n_classes: int, seed: int = 0) -> "CaptionClasses":
        from sklearn.cluster import KMeans

        n_classes = max(1, min(n_classes, len(np.unique(np.round(embeddings, 5), axis=0))))
        km = KMeans(n_clusters=n_classes, n_init=10, random_state=seed).fit(embeddings)
        return cls(centroids=km.cluster_centers_.astype(np.float32))

    def assign(self, embeddings: np.ndarray) -> np.ndarray:
        d = ((embeddings[:, None, :] - self.centroids[None]) ** 2).sum(-1)
        return d.argmin(axis=1)


def mel_statistics(audio: np.ndarray, sample_rate: int, n_mels: int = 64) -> np.ndarray:
    """Mono audio -> [2 * n_mels]: mean and spread over time of its log-mel spectrum (timbre, register)."""
    from components.common.mel import log_mel_spectrogram

    audio = np.asarray(audio, dtype=np.float32)
    if len(audio) < 1024:
        audio = np.pad(audio, (0, 1024 - len(audio)))
    mel = log_mel_spectrogram(torch.from_numpy(audio), sample_rate, n_fft=1024, n_mels=n_mels)   # [n_mels, frames]
    return np.concatenate([mel.mean(-1).numpy(), mel.std(-1).numpy()])


class ConditioningProbe:
    """Logistic regression from features of a piece to its class: on its codes (`on_codes`, code
    histograms) or on its decoded audio (`on_audio`, mel statistics: what a listener hears)."""

    def __init__(self, features, *, standardize: bool, C: float, seed: int = 0):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.features = features                 # list of pieces -> [n, F]
        regression = LogisticRegression(max_iter=3000, C=C, random_state=seed)
        self.model = make_pipeline(StandardScaler(), regression) if standardize else regression
        self.constant: int | None = None

    @classmethod
    def on_codes(cls, codebook_size: int, n_codebooks: int = 2, seed: int = 0) -> "ConditioningProbe":
        """Pieces are codes [K, T]."""
        return cls(lambda pieces: np.stack([code_histogram_features(c, codebook_size, n_codebooks) for c in pieces]),
                   standardize=False, C=1.0, seed=seed)

    @classmethod
    def on_audio(cls, sample_rate: int, seed: int = 0) -> "ConditioningProbe":
        """Pieces are mono audio arrays. 128 standardised features from a few dozen clips: strong
        regularisation (C=0.1) keeps it from memorising the training pieces."""
        return cls(lambda pieces: np.stack([mel_statistics(a, sample_rate) for a in pieces]),
                   standardize=True, C=0.1, seed=seed)

    def fit(self, pieces, labels: np.ndarray) -> "ConditioningProbe":
        if len(np.unique(labels)) < 2:        # one class: nothing to learn, always predict it
            self.constant = int(labels[0])
            return self
        self.model.fit(self.features(pieces), labels)
        return self

    def predict(self, pieces) -> np.ndarray:
        if self.constant is not None:
            return np.full(len(pieces), self.constant)
        return self.model.predict(self.features(pieces))


def accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.asarray(predicted) == np.asarray(truth))) if len(truth) else float("nan")


def majority_rate(labels: np.ndarray) -> float:
    """Accuracy of always answering the commonest class: the chance level that counts."""
    if len(labels) == 0:
        return float("nan")
    return float(np.bincount(np.asarray(labels)).max() / len(labels))


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
