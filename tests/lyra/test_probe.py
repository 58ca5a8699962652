"""The conditioning probe's classes: the instrument where the corpus records it, else caption clusters."""

import numpy as np

from components.lyra.config import GenerateConfig
from components.lyra.sample import probe_classes
from components.tokens.dataset import TokenClip


def clip(instrument, direction):
    embedding = np.zeros((1, 8), np.float32)
    embedding[0, direction] = 1.0
    return TokenClip(clip_id="c", piece_id="p", codes=np.zeros((4, 10), np.int16), text_embeddings=embedding,
                     captions=["a caption"], seconds_start=0.0, seconds_total=10.0, instrument=instrument)


def test_instruments_are_the_classes_when_every_clip_has_one():
    train = [clip("flute", 0), clip("organ", 1), clip("flute", 2)]
    held = [clip("organ", 0), clip("choir", 1)]
    kind, names, train_labels, held_labels = probe_classes(train, held, GenerateConfig())
    assert kind == "instrument" and names == ["choir", "flute", "organ"]
    assert [names[i] for i in train_labels] == ["flute", "organ", "flute"]
    assert [names[i] for i in held_labels] == ["organ", "choir"]


def test_caption_clusters_stand_in_when_an_instrument_is_missing():
    train = [clip("flute", 0), clip("flute", 0), clip(None, 1), clip(None, 1)]
    held = [clip("organ", 1), clip("organ", 0)]
    kind, names, train_labels, held_labels = probe_classes(train, held, GenerateConfig(n_classes=2))
    assert kind == "caption_class" and len(names) == 2
    assert train_labels[0] == train_labels[1] != train_labels[2] == train_labels[3]
    assert held_labels[0] == train_labels[2] and held_labels[1] == train_labels[0]   # nearest caption cluster
