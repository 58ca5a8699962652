"""A small random Lyra saved to disk (TRL re-creates its reference model from the path)."""

from pathlib import Path

import torch


def tiny_model(path: Path, seed: int = 0) -> Path:
    from components.lyra.model import LyraConfig, LyraForMusicGeneration

    torch.manual_seed(seed)
    config = LyraConfig(codebook_size=16, hidden_size=32, num_attention_heads=2, num_hidden_layers=2,
                        window_frames=16, n_text_tokens=1, frame_rate=10.0, max_seconds=10.0, text_every_step=True)
    LyraForMusicGeneration(config).save_pretrained(path)
    return path


import pytest  # noqa: E402

from tests.lyra.conftest import judge_dir, sine_codec  # noqa: E402,F401  (shared fixtures)


@pytest.fixture(scope="session")
def synthetic_tokens(tmp_path_factory):
    """The synthetic corpus with a test split too: RLAIF watches valid prompts and reports on test ones."""
    from tests.lyra.synthetic import write_synthetic_tokens

    root = tmp_path_factory.mktemp("tokens_with_test")
    return root, write_synthetic_tokens(root, with_test=True)
