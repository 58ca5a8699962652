"""Models for the service's tests: a small random Lyra, the tiny profile's codec and ORAQL architectures
(random weights: serving does not depend on what the weights learnt), and a prompt embedding that needs
no sentence model (a seeded vector per prompt)."""

from __future__ import annotations

import hashlib
import socket
import threading
import time

import numpy as np
import pytest


def embed(prompts):
    rows = [np.random.default_rng(int(hashlib.sha1(p.encode()).hexdigest()[:8], 16)).standard_normal(384) for p in prompts]
    return np.stack(rows).astype(np.float32)


def write_models(root, seed: int = 0, reference_tokens: int = 0):
    """(lyra, codec, oraql) folders of random models; another seed gives another Lyra."""
    import torch

    from components.lyra.model import LyraConfig, LyraForMusicGeneration
    from components.omnicodec import build_codec
    from components.omnicodec.config import CodecModelConfig
    from components.oraql.config import OraqlModelConfig
    from components.oraql.model import Oraql

    codec_dir, oraql_dir, lyra_dir = root / "codec", root / "oraql", root / f"lyra-{seed}"
    if not codec_dir.exists():
        build_codec(CodecModelConfig(num_codebooks=4, codebook_size=64, channels=8, decoder_channels=32),
                    seed=0).save_pretrained(codec_dir)
        torch.manual_seed(0)
        Oraql(OraqlModelConfig()).save_pretrained(oraql_dir)
    torch.manual_seed(seed)
    config = LyraConfig(num_codebooks=4, codebook_size=64, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, window_frames=64, max_seconds=20.0, n_text_tokens=1,
                        reference_tokens=reference_tokens)
    LyraForMusicGeneration(config).save_pretrained(lyra_dir)
    return lyra_dir, codec_dir, oraql_dir


@pytest.fixture
def models(tmp_path, monkeypatch):
    from components.lyra import text

    monkeypatch.setattr(text, "encode_prompts", embed)
    return write_models(tmp_path / "models")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float = 120.0, alive=None) -> None:
    """Until `url` answers 200 (an error status or a refused connection: keep trying); `alive()` False: give up."""
    import urllib.request

    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.time() > deadline or (alive is not None and not alive()):
            raise TimeoutError(f"{url} did not answer")
        time.sleep(0.2)


class Running:
    """A uvicorn server on a thread of the test process (so monkeypatches reach it)."""

    def __init__(self, app, port: int):
        import uvicorn

        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        wait_for(self.url + "/readyz")
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)
