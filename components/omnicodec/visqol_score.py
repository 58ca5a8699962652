"""ViSQOL (audio mode, 48 kHz) through the pure-Python `visqol-python` port.

Its numba kernels compile on first use (~30 s); `cache=True` kernels are kept in NUMBA_CACHE_DIR,
which we point at a user cache folder unless the caller chose one, so later runs start warm.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from components.common.audio import resample

VISQOL_RATE = 48_000


def _numba_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "lyra" / "numba")


@functools.lru_cache(maxsize=1)
def _api():
    os.environ.setdefault("NUMBA_CACHE_DIR", _numba_cache_dir())  # must be set before numba is imported
    Path(os.environ["NUMBA_CACHE_DIR"]).mkdir(parents=True, exist_ok=True)
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
