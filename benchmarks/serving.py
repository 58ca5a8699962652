"""`lyra serve` under a bounded loopback load: micro-batched serving against one request at a time.

The same server (`lyra serve` in a subprocess, models of the tiny profile's architectures with random
weights: speed does not depend on what the weights learnt; the real MiniLM text encoder) runs twice:

    batched      serve.max_batch_rows 16, batch_window_ms 10 (the defaults): requests that arrive together
                 share one forward pass
    one_at_once  serve.max_batch_rows 1: every request is its own forward pass, in arrival order

Load: `--clients` concurrent clients, each sending `--requests` requests one after another (a prompt,
`--seconds` of music, its own seed, best-of-1), over loopback HTTP. Reported per mode: throughput
(requests/s and seconds of music per second), p50/p95 latency from send to the last byte of the WAV,
and the mean rows per forward pass (from /metrics). The last line is the throughput ratio.

    python benchmarks/serving.py [--clients 32] [--requests 5] [--seconds 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def write_models(root: Path) -> tuple[Path, Path, Path]:
    """Lyra, OmniCodec and ORAQL folders with the tiny profile's architectures (random weights)."""
    import torch

    from components.config import load_stage_config
    from components.lyra.config import LMConfig
    from components.lyra.model import LyraConfig, LyraForMusicGeneration
    from components.omnicodec import build_codec
    from components.omnicodec.config import CodecConfig
    from components.oraql.config import OraqlConfig
    from components.oraql.model import Oraql

    params = REPO / "params.yaml"
    codec_cfg = load_stage_config("codec", CodecConfig, params_path=params, profile="tiny")
    lm = load_stage_config("lm", LMConfig, params_path=params, profile="tiny").model
    oraql_cfg = load_stage_config("oraql", OraqlConfig, params_path=params, profile="tiny")
    build_codec(codec_cfg.model, seed=0).save_pretrained(root / "codec")
    torch.manual_seed(0)
    Oraql(oraql_cfg.model).save_pretrained(root / "oraql")
    config = LyraConfig(num_codebooks=codec_cfg.model.num_codebooks, codebook_size=codec_cfg.model.codebook_size,
                        hidden_size=lm.dim, num_hidden_layers=lm.n_layers, num_attention_heads=lm.n_heads,
                        n_text_tokens=lm.n_text_tokens, window_frames=lm.window_frames, text_every_step=True)
    LyraForMusicGeneration(config).save_pretrained(root / "lyra")
    return root / "lyra", root / "codec", root / "oraql"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(models, scratch: Path, port: int, threads: int, settings: dict) -> subprocess.Popen:
    """`lyra serve` on the models, with the repo's params plus a listening section of its own (its votes and
    audio stay in the scratch folder)."""
    import yaml

    lyra, codec, oraql = models
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.setdefault("tiny", {})["listening"] = {"database": str(scratch / "votes.sqlite"), "audio_dir": str(scratch / "audio")}
    (scratch / "params.yaml").write_text(yaml.safe_dump(params))
    sets = ["--params", str(scratch / "params.yaml")]
    sets += [x for k, v in {"reports": str(scratch / "reports"), **settings}.items() for x in ("--set", f"{k}={v}")]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "components.cli", "serve", "--model", str(lyra), "--codec", str(codec),
                             "--oraql", str(oraql), "--port", str(port), *sets], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5).status == 200:
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("lyra serve did not become ready")


def request(url: str, prompt: str, seconds: float, seed: int) -> float:
    body = json.dumps({"prompt": prompt, "seconds": seconds, "seed": seed}).encode()
    start = time.perf_counter()
    req = urllib.request.Request(url + "/v1/generate", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        r.read()
    return time.perf_counter() - start


def load(url: str, clients: int, requests: int, seconds: float) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    prompts = ["Baroque chorale in A minor, played by strings", "Song in D major, played on the organ",
               "Traditional reel in G major, played on the guitar", "a calm piano piece"]

    def client(c: int) -> None:
        for r in range(requests):
            took = request(url, prompts[(c + r) % len(prompts)], seconds, seed=c * 1000 + r)
            with lock:
                latencies.append(took)

    request(url, prompts[0], seconds, seed=0)                 # warm: first-call allocations outside the clock
    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies


def metric(url: str, name: str) -> float:
    text = urllib.request.urlopen(url + "/metrics", timeout=30).read().decode()
    return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=5, help="requests per client, one after another")
    parser.add_argument("--seconds", type=float, default=2.0, help="music per request")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the server")
    args = parser.parse_args(argv)
    modes = {"batched": {"max_batch_rows": 16, "batch_window_ms": 10}, "one_at_once": {"max_batch_rows": 1}}
    n = args.clients * args.requests
    print(f"{args.clients} clients x {args.requests} requests of {args.seconds:g} s (best-of-1), server threads "
          f"{args.threads}; tiny-profile architectures, random weights")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        models = write_models(Path(tmp) / "models")
        for mode, settings in modes.items():
            port = free_port()
            scratch = Path(tmp) / mode
            scratch.mkdir()
            proc = start_server(models, scratch, port, args.threads, settings)
            try:
                url = f"http://127.0.0.1:{port}"
                wall, latencies = load(url, args.clients, args.requests, args.seconds)
                rows = metric(url, "lyra_serve_batch_rows_total") / metric(url, "lyra_serve_batches_total")
            finally:
                proc.terminate()
                proc.wait(timeout=60)
            q = statistics.quantiles(latencies, n=20)
            results[mode] = {"throughput": n / wall, "p50": statistics.median(latencies), "p95": q[18], "rows": rows}
            print(f"{mode:12s} {n} requests in {wall:6.1f} s: {n / wall:5.2f} requests/s "
                  f"({n * args.seconds / wall:5.1f} s of music per s), p50 {results[mode]['p50']:5.2f} s, "
                  f"p95 {results[mode]['p95']:5.2f} s, {rows:.1f} rows per forward pass", flush=True)
    ratio = results["batched"]["throughput"] / results["one_at_once"]["throughput"]
    print(f"p95 latency batched / one-at-once: {results['batched']['p95'] / results['one_at_once']['p95']:.2f}")
    print(f"serving_batched_throughput_ratio: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
