"""Reference / target pairs: different segments of one recording; pools disjoint by piece."""

import numpy as np

from components.influence.pairs import pair_batch, split_by_piece, usable
from tests.influence.conftest import K, V, synthetic_recordings


def test_reference_and_target_never_overlap_and_come_from_one_recording():
    recs = synthetic_recordings(n=6, frames=50)
    for r in recs:                          # frame f of recording i holds a unique stamp in codebook 3
        r.codes[3] = np.arange(r.codes.shape[1]) + 1000 * int(r.name[1:])
    for step in range(20):
        b = pair_batch(recs, step, 8, reference_frames=20, window_frames=16, frame_rate=10.0, special=V + 1,
                       text_dropout=0.5, reference_dropout=0.5, seed=0)
        assert b.conditions.reference.shape == (8, K, 20) and b.inputs.shape == (8, K, 16 + K - 1)
        for i in range(8):
            ref = set(b.conditions.reference[i, 3].tolist())
            target = b.labels[i, 3][b.labels[i, 3] >= 0].tolist()
            assert len({x // 1000 for x in ref | set(target)}) == 1          # one recording
            assert not ref & set(target)                                    # different segments
    again = pair_batch(recs, 7, 8, reference_frames=20, window_frames=16, frame_rate=10.0, special=V + 1,
                       text_dropout=0.5, reference_dropout=0.5, seed=0)
    same = pair_batch(recs, 7, 8, reference_frames=20, window_frames=16, frame_rate=10.0, special=V + 1,
                      text_dropout=0.5, reference_dropout=0.5, seed=0)
    assert (again.inputs == same.inputs).all()                              # a function of (seed, step): resumable


def test_pools_are_disjoint_by_piece_even_for_a_tiny_corpus():
    recs = synthetic_recordings(n=12)
    for r in recs:
        r.piece_id = f"piece{int(r.name[1:]) % 4}"       # 4 pieces, 3 renderings each
    a, b = split_by_piece(recs, 0.5, seed=0)
    assert a and b and not {r.piece_id for r in a} & {r.piece_id for r in b}
    two = [r for r in recs if r.piece_id in ("piece0", "piece1")]
    for seed in range(5):                              # whatever the hash says, both sides get a piece
        a, b = split_by_piece(two, 0.5, seed=seed)
        assert a and b
    assert usable(recs, 50, 11) == []
