"""The in-house mel filterbank is librosa's HTK filterbank, without importing librosa at run time."""

import numpy as np
import pytest

from components.common.mel import _mel_filterbank


@pytest.mark.parametrize("sample_rate,n_fft,n_mels,f_min,f_max", [
    (24000, 32, 5, 0.0, None), (24000, 2048, 320, 0.0, None), (24000, 1024, 80, 0.0, None),
    (48000, 512, 64, 30.0, 16000.0), (16000, 256, 40, 0.0, 8000.0),
])
def test_filterbank_equals_librosa_htk(sample_rate, n_fft, n_mels, f_min, f_max):
    import librosa

    expected = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max, htk=True,
                                   norm=None)
    np.testing.assert_allclose(_mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max).numpy(), expected,
                               atol=1e-6)
