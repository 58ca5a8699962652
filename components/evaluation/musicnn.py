"""musicnn's MagnaTagATune tagger (Pons & Serra, 2019) as a PyTorch module, its weights read from the `musicnn` wheel.

Nobody here trained it: the weights are the authors', learnt on MagnaTagATune's real recordings, shipped inside the
pip package as a TensorFlow 1 checkpoint and read by `checkpoint.py` (no TensorFlow at run time). The network is
the authors' `build_musicnn` (musicnn/models.py), laid out here with time as the convolutions' length axis:

    log-mel [B, T, 96] -> batch-norm -> front end: timbral convs (7 x 38, 7 x 67 mel bins, max over frequency)
                                                   + temporal convs (128, 64, 32 frames, max over frequency)
                                                   -> [B, 561, T]
                       -> mid end: three 7-frame convs of 64 filters, the last two residual -> [B, 753, T]
                       -> back end: max and mean over time, interleaved -> [B, 1506] -> dense 200 (the
                          "penultimate" embedding) -> dense 50 (tag logits)

The preprocessing replicates the reference's (librosa mel at 16 kHz, 512-point FFT, hop 256, 96 bands; float16
power; log10(10000 x + 1)) because the weights expect exactly it. The float16 cast overflows on loud input (every
clip then gets the same tags), so `embed` peak-normalises each clip first (STACK.md).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from components.evaluation.checkpoint import CheckpointError, read_checkpoint

SAMPLE_RATE = 16_000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187  # librosa.time_to_frames(3 s) + 1: what the reference feeds, non-overlapping
PEAK = 0.3  # peak level each clip is normalised to before the float16 spectrogram
# The reference computes 10000 * power in float16 (max 65504): a clip whose mel power passes this is turned down
# until it does not (a steady tone at peak 0.3 does; music at 0.3 mostly does not)
POWER_LIMIT = 6.0
BN_EPS = 1e-3  # tf.compat.v1.layers.batch_normalization's default

MTT_TAGS = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano", "ambient",
    "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing", "vocals", "no vocals",
    "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man",
    "classic", "choir", "voice", "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello",
    "no voice", "weird", "country", "metal", "female voice", "choral",
)  # fmt: skip


def _batch_norm(channels: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(channels, eps=BN_EPS)


class FrequencyPooledConv(nn.Module):
    """A conv over (time, mel) whose output is max-pooled over the remaining mel axis: [B, 1, T, 96] -> [B, C, T].

    `time_pad` is (before, after) zero frames: the timbral convs pad 3 + 3 and run 'valid'; the temporal ones run
    TensorFlow's 'same' (for an even length k: (k - 1) // 2 before, the rest after)."""

    def __init__(self, filters: int, frames: int, bins: int, time_pad: tuple[int, int]):
        super().__init__()
        self.time_pad = time_pad
        self.conv = nn.Conv2d(1, filters, (frames, bins))
        self.norm = nn.BatchNorm2d(filters, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, 0, *self.time_pad))
        x = self.norm(F.relu(self.conv(x)))
        return x.amax(dim=3)


class MidEndConv(nn.Module):
    """A 7-frame conv across all input channels: [B, C_in, T] -> [B, 64, T] (zero-padded 3 + 3 frames)."""

    def __init__(self, in_channels: int, filters: int = 64):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, filters, 7, padding=3)
        self.norm = _batch_norm(filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(F.relu(self.conv(x)))


def _same_pad(frames: int) -> tuple[int, int]:
    before = (frames - 1) // 2
    return before, frames - 1 - before


class MusicnnMTT(nn.Module):
    def __init__(self, n_tags: int = len(MTT_TAGS), embedding: int = 200):
        super().__init__()
        self.input_norm = nn.BatchNorm2d(1, eps=BN_EPS)
        self.timbral = nn.ModuleList(FrequencyPooledConv(204, 7, bins, (3, 3)) for bins in (38, 67))
        self.temporal = nn.ModuleList(FrequencyPooledConv(51, frames, 1, _same_pad(frames)) for frames in (128, 64, 32))
        self.midend = nn.ModuleList([MidEndConv(561), MidEndConv(64), MidEndConv(64)])
        self.pool_norm = _batch_norm(2 * 753)
        self.dense = nn.Linear(2 * 753, embedding)
        self.dense_norm = _batch_norm(embedding)
        self.tags = nn.Linear(embedding, n_tags)

    def forward(self, log_mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log_mel [B, T, 96] -> (tag logits [B, 50], penultimate embedding [B, 200])."""
        x = self.input_norm(log_mel[:, None])  # [B, 1, T, 96]
        front = torch.cat([block(x) for block in (*self.timbral, *self.temporal)], dim=1)  # [B, 561, T]
        mid1 = self.midend[0](front)
        mid2 = self.midend[1](mid1) + mid1
        mid3 = self.midend[2](mid2) + mid2
        features = torch.cat([front, mid1, mid2, mid3], dim=1)  # [B, 753, T]
        # TF flattened [B, 753, 2] (max, mean) row-major: the two pools of one channel sit side by side
        pooled = torch.stack([features.amax(dim=2), features.mean(dim=2)], dim=2).flatten(1)  # [B, 1506]
        penultimate = self.dense_norm(F.relu(self.dense(self.pool_norm(pooled))))
        return self.tags(penultimate), penultimate


def _load_norm(module: nn.Module, weights: dict[str, np.ndarray], name: str) -> None:
    module.weight.data = torch.from_numpy(weights[f"{name}/gamma"])
    module.bias.data = torch.from_numpy(weights[f"{name}/beta"])
    module.running_mean.data = torch.from_numpy(weights[f"{name}/moving_mean"])
    module.running_var.data = torch.from_numpy(weights[f"{name}/moving_variance"])


def _load_conv(conv: nn.Module, weights: dict[str, np.ndarray], name: str) -> None:
    kernel = weights[f"{name}/kernel"]  # TF: [frames, bins, in, out]
    if isinstance(conv, nn.Conv1d):  # the mid end's [7, C_in, 1, 64]: bins play the channels
        conv.weight.data = torch.from_numpy(np.ascontiguousarray(kernel[:, :, 0, :].transpose(2, 1, 0)))
    else:
        conv.weight.data = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
    conv.bias.data = torch.from_numpy(weights[f"{name}/bias"])


def checkpoint_prefix() -> str:
    """The MTT_musicnn checkpoint inside the installed `musicnn` package (imported as files: the package's modules
    import TensorFlow)."""
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError("the `musicnn` package is not installed (it ships the evaluator's weights): make install")
    return str(Path(next(iter(spec.submodule_search_locations))) / "MTT_musicnn") + "/"  # the files are `.index` etc.


def load_musicnn(prefix: str | Path | None = None) -> MusicnnMTT:
    """The tagger in eval mode with the authors' weights (layer names in the order TF1 created them)."""
    weights = read_checkpoint(prefix if prefix is not None else checkpoint_prefix())
    model = MusicnnMTT()
    _load_norm(model.input_norm, weights, "batch_normalization")
    blocks = [*model.timbral, *model.temporal]
    for i, block in enumerate(blocks):
        _load_conv(block.conv, weights, "conv2d" if i == 0 else f"conv2d_{i}")
        _load_norm(block.norm, weights, f"batch_normalization_{i + 1}")
    for i, block in enumerate(model.midend):
        _load_conv(block.conv, weights, f"conv2d_{len(blocks) + i}")
        _load_norm(block.norm, weights, f"batch_normalization_{len(blocks) + 1 + i}")
    _load_norm(model.pool_norm, weights, "batch_normalization_9")
    model.dense.weight.data = torch.from_numpy(weights["dense/kernel"].T.copy())
    model.dense.bias.data = torch.from_numpy(weights["dense/bias"])
    _load_norm(model.dense_norm, weights, "batch_normalization_10")
    model.tags.weight.data = torch.from_numpy(weights["dense_1/kernel"].T.copy())
    model.tags.bias.data = torch.from_numpy(weights["dense_1/bias"])
    return model.eval()


def _mel_power(audio_16k: np.ndarray) -> np.ndarray:
    return librosa.feature.melspectrogram(y=audio_16k, sr=SAMPLE_RATE, hop_length=HOP, n_fft=N_FFT, n_mels=N_MELS)


def log_mel(audio_16k: np.ndarray) -> np.ndarray:
    """The reference's input: [T, 96] log-compressed mel power, computed through float16 as it does."""
    power = _mel_power(audio_16k).T.astype(np.float16)
    return np.log10(10000 * power + 1).astype(np.float32)


def patches(mel: np.ndarray) -> np.ndarray:
    """Non-overlapping 3 s patches [P, 187, 96], as the reference cuts them (a trailing remainder is dropped). A clip
    shorter than one patch is one shorter patch (the network pools over time; the reference raises instead)."""
    n = mel.shape[0] // PATCH_FRAMES
    if n == 0:
        return mel[None]
    return mel[: n * PATCH_FRAMES].reshape(n, PATCH_FRAMES, N_MELS)


def prepare(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono float audio at any rate -> the 16 kHz signal the tagger reads: peak-normalised, then turned down where
    its mel power would overflow the reference's float16 spectrogram."""
    audio = np.asarray(audio, dtype=np.float32)
    if sample_rate != SAMPLE_RATE:
        audio = librosa.resample(audio, orig_sr=sample_rate, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak == 0:
        return audio
    audio = audio * np.float32(PEAK / peak)
    loudest = float(_mel_power(audio).max())
    return audio * np.float32(np.sqrt(POWER_LIMIT / loudest)) if loudest > POWER_LIMIT else audio


@dataclass(frozen=True)
class ClipScores:
    """One clip's readings, averaged over its 3 s patches (the reference's taggram averaged over time)."""

    tags: np.ndarray  # [50] sigmoid posteriors
    embedding: np.ndarray  # [200] penultimate


@torch.no_grad()
def score(model: MusicnnMTT, audio: np.ndarray, sample_rate: int) -> ClipScores:
    batch = torch.from_numpy(patches(log_mel(prepare(audio, sample_rate))))
    logits, penultimate = model(batch)
    return ClipScores(tags=torch.sigmoid(logits).mean(0).numpy(), embedding=penultimate.mean(0).numpy())
