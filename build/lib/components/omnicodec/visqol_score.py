"""ViSQOL (audio mode, 48 kHz) through the pure-Python `visqol-python` port.

Its numba kernels compile on first use (~30 s); `cache=True` keeps them in the package's
__pycache__, so later runs start warm. NUMBA_CACHE_DIR is deliberately not set here: an
environment variable set by a library call leaks into every process started afterwards, which
then share one numba cache (a shared cache written by processes starting together corrupted
librosa's gufuncs in CI; see components/common/mel.py).
"""

from __future__ import annotations

import functools

import numpy as np

from components.common.audio import resample

VISQOL_RATE = 48_000


@functools.lru_cache(maxsize=1)
def _api():
    from visqol import VisqolApi

    api = VisqolApi()
    api.create(mode="audio")
    return api


def visqol(reference: np.ndarray, degraded: np.ndarray, sample_rate: int) -> float:
    """MOS-LQO (1..~4.75) of `degraded` against `reference`, both mono float arrays at `sample_rate`."""
    n = min(len(reference), len(degraded))
    ref = resample(np.asarray(reference[:n], dtype=np.float32), sample_rate, VISQOL_RATE).astype(np.float64)
    deg = resample(np.asarray(degraded[:n], dtype=np.float32), sample_rate, VISQOL_RATE).astype(np.float64)
    return float(_api().measure_from_arrays(ref, deg, VISQOL_RATE).moslqo)
