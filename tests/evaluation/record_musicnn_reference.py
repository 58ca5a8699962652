"""Record musicnn's reference outputs for tests/evaluation/test_musicnn.py (run once, by hand, in a throwaway venv).

The reference implementation needs TensorFlow (a ~2.7 GB venv), which the project does not install:

    python3 -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu==2.21.* tf-keras==2.21.* librosa soundfile
    /tmp/tf/bin/pip install --no-deps musicnn==0.1.0
    TF_USE_LEGACY_KERAS=1 /tmp/tf/bin/python tests/evaluation/record_musicnn_reference.py

It runs musicnn's own `extractor` (MTT_musicnn, 3 s patches, no overlap) on every wav in fixtures/musicnn/ and
writes each patch's tag posteriors and penultimate embedding to fixtures/musicnn/reference.npz.
"""

from pathlib import Path

import numpy as np
from musicnn.extractor import extractor

HERE = Path(__file__).parent / "fixtures" / "musicnn"

if __name__ == "__main__":
    out = {}
    for wav in sorted(HERE.glob("*.wav")):
        taggram, _tags, features = extractor(str(wav), model="MTT_musicnn", extract_features=True)
        out[f"{wav.stem}/tags"] = np.asarray(taggram, dtype=np.float32)
        out[f"{wav.stem}/penultimate"] = np.asarray(features["penultimate"], dtype=np.float32)
        print(wav.name, taggram.shape, features["penultimate"].shape)
    np.savez_compressed(HERE / "reference.npz", **out)
