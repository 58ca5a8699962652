"""Does the text matter? A probe trained on real clips, applied to generations.

    caption embeddings of training clips --k-means--> n caption classes (no labels needed)
    codes of training clips --features--> logistic-regression probe: features -> caption class
    generation prompted with a held-out caption of class c --probe--> c'?   accuracy vs chance

The same prompts generated *without* their text (the unconditional model) are the control: if
conditioning works, conditional accuracy beats both chance and the unconditional accuracy.
Features are per-codebook code histograms of the first codebooks (the coarse content: timbre,
register, density), computed on codes, so real clips need no decoding.
"""

from __future__ import annotations

import dataclasses

import numpy as np


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


class ConditioningProbe:
    """Logistic regression from code features to caption class."""

    def __init__(self, codebook_size: int, n_codebooks: int = 2, seed: int = 0):
        from sklearn.linear_model import LogisticRegression

        self.codebook_size, self.n_codebooks = codebook_size, n_codebooks
        self.model = LogisticRegression(max_iter=2000, C=1.0, random_state=seed)
        self.constant: int | None = None

    def features(self, codes_list) -> np.ndarray:
        return np.stack([code_histogram_features(c, self.codebook_size, self.n_codebooks) for c in codes_list])

    def fit(self, codes_list, labels: np.ndarray) -> "ConditioningProbe":
        if len(np.unique(labels)) < 2:        # one class: nothing to learn, always predict it
            self.constant = int(labels[0])
            return self
        self.model.fit(self.features(codes_list), labels)
        return self

    def predict(self, codes_list) -> np.ndarray:
        if self.constant is not None:
            return np.full(len(codes_list), self.constant)
        return self.model.predict(self.features(codes_list))


def accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.asarray(predicted) == np.asarray(truth))) if len(truth) else float("nan")


def majority_rate(labels: np.ndarray) -> float:
    """Accuracy of always answering the commonest class: the chance level that counts."""
    if len(labels) == 0:
        return float("nan")
    return float(np.bincount(np.asarray(labels)).max() / len(labels))
