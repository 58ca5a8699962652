"""`make install` compiles librosa's and ViSQOL's numba kernels into their caches (components/warmup.py)."""

import subprocess
import sys


def test_the_install_step_runs_the_kernels_the_stages_use():
    proc = subprocess.run([sys.executable, "-m", "components.warmup"], capture_output=True, text=True, check=True)
    assert proc.stdout.startswith("numba kernels cached: librosa") and "visqol" in proc.stdout
