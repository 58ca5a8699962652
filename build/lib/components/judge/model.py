"""What the judge is: one classifier per head (instrument, collection) over crop features.

    piece audio --features.piece_features--> [crops, F] --standardise--> logistic regression
      per head: crop log-probabilities [crops, classes] --mean over crops--> piece answer

Saved as `judge.joblib` (the fitted scikit-learn pipelines) + `judge.json` (classes, settings).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from components.judge.features import piece_features

MODEL_FILE, CARD_FILE = "judge.joblib", "judge.json"


@dataclasses.dataclass
class Judge:
    sample_rate: int
    crop_seconds: float
    crops_per_clip: int
    n_mels: int
    classes: dict[str, list[str]]            # head -> class names (index = label)
    pipelines: dict                          # head -> fitted sklearn pipeline

    def features(self, pieces: list[np.ndarray]) -> list[np.ndarray]:
        return [piece_features(a, self.sample_rate, self.crop_seconds, self.crops_per_clip, self.n_mels)
                for a in pieces]

    def log_probs(self, head: str, features: list[np.ndarray]) -> np.ndarray:
        """[n_pieces, n_classes]: each piece's crops' log-probabilities, averaged."""
        pipe = self.pipelines[head]
        out = np.full((len(features), len(self.classes[head])), -np.inf)
        for i, f in enumerate(features):
            out[i, pipe.classes_] = pipe.predict_log_proba(f).mean(axis=0)
        return out

    def predict(self, head: str, features: list[np.ndarray]) -> np.ndarray:
        """[n_pieces] class indices into self.classes[head]."""
        return self.log_probs(head, features).argmax(axis=1)

    def save(self, folder: Path) -> None:
        import joblib

        joblib.dump(self.pipelines, folder / MODEL_FILE)
        card = {k: v for k, v in dataclasses.asdict(self).items() if k != "pipelines"}
        (folder / CARD_FILE).write_text(json.dumps(card, indent=2))

    @classmethod
    def load(cls, folder: str | Path) -> "Judge":
        import joblib

        folder = Path(folder)
        if not (folder / CARD_FILE).is_file():
            raise FileNotFoundError(f"{folder} holds no judge ({CARD_FILE} missing); run `lyra judge train`")
        card = json.loads((folder / CARD_FILE).read_text())
        return cls(**card, pipelines=joblib.load(folder / MODEL_FILE))


def fit_head(features: list[np.ndarray], labels: np.ndarray, C: float, seed: int):
    """A standardised multinomial logistic regression on every crop of every piece (crop label = piece label)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.concatenate(features)
    y = np.concatenate([np.full(len(f), label) for f, label in zip(features, labels)])
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=seed)).fit(X, y)
