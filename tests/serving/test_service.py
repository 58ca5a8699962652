"""`lyra serve` over real HTTP: batching, seeds, refusals, the swap on promotion, health and metrics."""

from __future__ import annotations

import concurrent.futures
import io
import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.serving.conftest import Running, free_port, wait_for, write_models


def make_service(tmp_path, lyra, codec, oraql, resolver=None, **settings):
    from components.listening.votes import VoteStore
    from components.lyra.config import GenerateConfig
    from components.serving.app import Service
    from components.serving.config import ServeConfig
    from components.serving.engine import Engine, Resolver

    cfg = ServeConfig(model=str(lyra), codec=str(codec), oraql=str(oraql), watch_seconds=0.2, **settings)
    return Service(cfg, Engine(cfg, GenerateConfig(), resolver or Resolver(tmp_path)),
                   VoteStore.open(str(tmp_path / "votes.sqlite")), reports=tmp_path / "reports", audio_dir=tmp_path / "audio")


def post(url: str, body, headers: dict | None = None) -> tuple[int, bytes, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers or {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def audio_of(data: bytes) -> np.ndarray:
    audio, _ = sf.read(io.BytesIO(data), dtype="float32")
    return audio


def test_a_request_alone_is_what_lyra_generate_makes_and_concurrent_requests_share_a_pass(models, tmp_path):
    """Alone, a request is exactly `lyra generate --seed`'s piece; batched, its own seeded draw, reproducible for a
    given batch (bigger batches leave the int8 step path and round differently, so not the solo piece)."""
    import torch

    from components.lyra import text
    from components.lyra.config import GenerateConfig
    from components.lyra.generation import generate_codes, load_model, sampling_params
    from components.omnicodec.decoding import decode_pieces, load_codec
    from components.serving.app import build_app

    lyra, codec, oraql = models
    service = make_service(tmp_path, lyra, codec, oraql, batch_window_ms=300)
    prompts = [f"piece number {i}" for i in range(6)]
    with Running(build_app(service), free_port()) as srv:
        status, solo, headers = post(srv.url + "/v1/generate", {"prompt": prompts[0], "seconds": 1.0, "seed": 7})
        assert status == 200 and headers["x-lyra-batch-rows"] == "1"
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            replies = list(pool.map(lambda i: post(srv.url + "/v1/generate", {"prompt": prompts[i], "seconds": 1.0,
                                                                                "seed": 7 + i}), range(6)))
    assert [r[0] for r in replies] == [200] * 6
    assert max(int(r[2]["x-lyra-batch-rows"]) for r in replies) > 1, "concurrent requests never shared a pass"

    model = load_model(lyra)
    generated, _ = generate_codes(model, text.encode_prompts([prompts[0]]), 1.0, sampling_params(GenerateConfig()), 7)
    reference = decode_pieces(load_codec(codec), generated.codes, generated.lengths)[0]
    assert np.allclose(audio_of(solo), reference, atol=1e-4)               # 16-bit WAV rounding
    # in a batch a request is a draw with its own seed, and one batch's composition always gives the same pieces
    from components.serving.engine import Request

    batch = [Request(p, 1.0, 7 + i) for i, p in enumerate(prompts)]
    first, again = service.engine.generate(batch), service.engine.generate(batch)
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(first, again))
    assert first[0].batch_rows == 6 and torch.get_num_threads() >= 1


def test_best_of_n_returns_oraqls_choice_with_every_candidates_score(models, tmp_path):
    from components.serving.app import build_app

    lyra, codec, oraql = models
    with Running(build_app(make_service(tmp_path, lyra, codec, oraql)), free_port()) as srv:
        status, _, headers = post(srv.url + "/v1/generate", {"prompt": "bright flute", "seconds": 1.0, "best_of": 4})
    scores = [float(s) for s in headers["x-lyra-oraql-scores"].split(",")]
    assert status == 200 and len(scores) == 4 and headers["x-lyra-batch-rows"] == "4"


@pytest.mark.parametrize("body, says", [
    (b"not json", "body: not JSON"),
    ({"prompt": "x", "temperature": 2}, "temperature: unknown field"),
    ({"seconds": 2}, "prompt: required"),
    ({"prompt": "   "}, "prompt: give the music"),
    ({"prompt": "x" * 501}, "prompt: 501 characters"),
    ({"prompt": "x", "seconds": 0}, "seconds: 0 is not in"),
    ({"prompt": "x", "seconds": 1e9}, "seconds: 1e+09 is not in"),
    ({"prompt": "x", "best_of": 0}, "best_of: 0 is not from 1"),
    ({"prompt": "x", "best_of": 100000}, "best_of: 100000 is not from 1"),
    ({"prompt": "x", "seed": -1}, "seed: -1 must be"),
    ({"prompt": "x", "seed": "7"}, "seed: \"7\" has the wrong type"),
    ({"prompt": "x", "best_of": True}, "best_of: true has the wrong type"),
    ({"prompt": "x", "system": "candidate"}, "system 'candidate': this service serves model"),
    ([1, 2], "body: expected a JSON object"),
    (b" " * 70_000, "body: 70000 bytes, at most 64000"),
    ({"prompt": "x", "seconds": 10 ** 400}, "seconds: 1000000000"),
])
def test_bad_requests_are_refused_naming_the_field(models, tmp_path, body, says):
    from components.serving.app import build_app

    lyra, codec, oraql = models
    with Running(build_app(make_service(tmp_path, lyra, codec, oraql)), free_port()) as srv:
        status, reply, _ = post(srv.url + "/v1/generate", body)
        assert status == 400 and says in json.loads(reply)["error"], reply
        assert urllib.request.urlopen(srv.url + "/healthz").status == 200       # and the service lives on


def test_uploads_are_refused_by_name_size_and_model(models, tmp_path):
    from components.serving.app import build_app

    lyra, codec, oraql = models
    service = make_service(tmp_path, lyra, codec, oraql, max_upload_bytes=50_000)
    wav = io.BytesIO()
    sf.write(wav, np.zeros(8000, np.float32), 16000, format="WAV")
    url = lambda name: f"/v1/generate/reference?filename={name}&prompt=calm&seconds=1"   # noqa: E731
    with Running(build_app(service), free_port()) as srv:
        cases = {"song.exe": (b"MZ", "reference song.exe: give ?filename= ending in"),
                 "big.wav": (b"\0" * 60_000, "reference big.wav: 60000 bytes, at most 50000"),
                 "empty.wav": (b"", "reference empty.wav: empty upload"),
                 "song.wav": (wav.getvalue(), "has no reference conditioner")}
        for name, (data, says) in cases.items():
            status, reply, _ = post(srv.url + url(name), data, {"Content-Type": "application/octet-stream"})
            assert status == 400 and says in json.loads(reply)["error"], (name, reply)


def test_a_promotion_swaps_the_served_version_without_dropping_a_request(models, tmp_path):
    """The resolver stands in for the registry: the 'holder' file names the folder production holds."""
    from components.serving.app import build_app
    from components.serving.engine import Resolver

    lyra, codec, oraql = models
    other, _, _ = write_models(Path(lyra).parent, seed=1)
    holder = tmp_path / "holder"
    holder.write_text(str(lyra))

    class Production(Resolver):
        def identify(self, ref):
            return super().identify(holder.read_text() if ref == "lyra@production" else ref)

        def folder(self, ref, label):
            return Path(holder.read_text()) if ref == "lyra@production" else super().folder(ref, label)

    service = make_service(tmp_path, "lyra@production", codec, oraql, resolver=Production(tmp_path))
    with Running(build_app(service), free_port()) as srv:
        before = json.loads(urllib.request.urlopen(srv.url + "/v1/versions").read())["serving"]["model"]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(post, srv.url + "/v1/generate", {"prompt": f"p{i}", "seconds": 1.0, "seed": i})
                       for i in range(12)]
            holder.write_text(str(other))                                   # the promotion lands mid-load
            replies = [f.result() for f in futures]
        import time

        deadline = time.time() + 60
        while json.loads(urllib.request.urlopen(srv.url + "/v1/versions").read())["serving"]["model"] == before:
            assert time.time() < deadline, "the service never picked up the promotion"
            time.sleep(0.2)
        after = json.loads(urllib.request.urlopen(srv.url + "/v1/versions").read())
        status, _, headers = post(srv.url + "/v1/generate", {"prompt": "after", "seconds": 1.0})
        metrics = urllib.request.urlopen(srv.url + "/metrics").read().decode()
    assert [r[0] for r in replies] == [200] * 12                            # none dropped
    assert {r[2]["x-lyra-version"] for r in replies} <= {before, after["serving"]["model"]}
    assert after["swaps"] == 1 and headers["x-lyra-version"] == after["serving"]["model"] != before
    assert "lyra_serve_swaps_total 1" in metrics and 'lyra_serve_requests_total{outcome="ok"} 13' in metrics


def test_not_ready_until_the_models_load(models, tmp_path):
    from components.serving.app import build_app

    lyra, codec, oraql = models
    service = make_service(tmp_path, tmp_path / "no-such-model", codec, oraql)
    port = free_port()
    import threading
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(build_app(service), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", timeout=30)
        time.sleep(0.5)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert err.value.code == 503 and "no-such-model" in err.value.read().decode()
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_lyra_generate_on_a_server_writes_the_served_piece_and_names_its_version(models, tmp_path, capsys):
    from components.cli import main as lyra
    from components.serving.app import build_app

    lyra_dir, codec, oraql = models
    with Running(build_app(make_service(tmp_path, lyra_dir, codec, oraql)), free_port()) as srv:
        out = tmp_path / "piece.wav"
        assert lyra(["generate", "calm piano", "--seconds", "1", "--seed", "5", "--out", str(out),
                     "--server", srv.url]) == 0
        _, direct, headers = post(srv.url + "/v1/generate", {"prompt": "calm piano", "seconds": 1.0, "seed": 5})
        assert out.read_bytes() == direct                                        # the same seed, the same piece
        record = json.loads(out.with_suffix(".json").read_text())
        assert record["model"]["version"] == headers["x-lyra-version"] and record["server"] == srv.url
        assert lyra(["generate", "x", "--temperature", "0.5", "--out", str(out), "--server", srv.url]) == 2
        assert "--temperature: --server generates with the served model" in capsys.readouterr().err
        assert lyra(["generate", "x", "--seconds", "1000", "--out", str(out), "--server", srv.url]) == 2
        assert "refused the request (400): seconds: 1000 is not in" in capsys.readouterr().err
    assert lyra(["generate", "x", "--out", str(out), "--server", srv.url]) == 2          # the server is gone
    assert "cannot reach it" in capsys.readouterr().err


def test_a_full_queue_answers_503_and_a_room_without_two_arms_says_which_settings(models, tmp_path):
    import time as clock

    from components.serving.app import build_app

    lyra, codec, oraql = models
    service = make_service(tmp_path, lyra, codec, oraql, max_queue=1, max_batch_rows=1)
    real = service.engine.generate

    def slow(requests):
        clock.sleep(0.5)
        return real(requests)

    service.batcher.run = slow
    with Running(build_app(service), free_port()) as srv:
        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            replies = list(pool.map(lambda i: post(srv.url + "/v1/generate", {"prompt": f"p{i}", "seconds": 0.5}),
                                    range(5)))
        busy = [r for r in replies if r[0] == 503]
        assert busy and all(r[2]["retry-after"] == "5" and "requests are waiting" in json.loads(r[1])["error"]
                            for r in busy)
        assert any(r[0] == 200 for r in replies)
        # best-of arms need 2 rows, one batch holds 1: no pair can be made, and the service says why
        from tests.ui.test_listening_room import Listener

        listener = Listener(srv.url)
        with pytest.raises(urllib.error.HTTPError) as err:
            listener.get("/v1/pairs/next")
        assert err.value.code == 503 and "serve.max_best_of and serve.max_batch_rows" in err.value.read().decode()
        assert urllib.request.urlopen(srv.url + "/healthz").status == 200


def test_votes_need_a_listener_id_the_service_issued_and_a_pair_it_played_them(models, tmp_path):
    from components.serving.app import COOKIE, build_app
    from tests.ui.test_listening_room import Listener

    lyra, codec, oraql = models
    service = make_service(tmp_path, lyra, codec, oraql)
    with Running(build_app(service), free_port()) as srv:
        alice, bob = Listener(srv.url), Listener(srv.url)
        pair = alice.get("/v1/pairs/next")["id"]
        forged = {"Content-Type": "application/json", "Cookie": f"{COOKIE}=0123456789abcdef.{'0' * 32}"}
        status, reply, _ = post(srv.url + "/v1/votes", {"pair": pair, "choice": "a"}, forged)
        assert status == 400 and "listener: open the listening page first" in json.loads(reply)["error"]
        with pytest.raises(urllib.error.HTTPError) as err:
            bob.vote(pair, "a")                                    # never played to bob
        assert err.value.code == 403 and "not played to this listener" in err.value.read().decode()
        assert alice.vote(pair, "b")["judgement"] == 1
        with pytest.raises(urllib.error.HTTPError) as again:
            alice.vote(pair, "a")
        assert again.value.code == 409
