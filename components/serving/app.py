"""`lyra serve`'s HTTP routes (Starlette on uvicorn: both already in the runtime lock as the Dagster
webserver's stack, ASGI so requests wait on the batcher without a thread each).

    GET  /                         the listening page (sets a pseudonymous listener cookie)
    POST /v1/generate              {"prompt", "seconds", "seed", "best_of", "system"} -> audio/wav
    POST /v1/generate/reference    raw song bytes, ?filename=song.wav&prompt=...&seconds=... -> audio/wav
    GET  /v1/pairs/next            a blind pair {id, prompt, a, b} the listener has not judged
    GET  /v1/pairs/{id}/{a|b}.wav  its audio
    POST /v1/votes                 {"pair", "choice": "a"|"b", "rating_a"?, "rating_b"?} and nothing else
    GET  /v1/tally                 the judgements so far: preference with its interval, P(liked) per best-of
    GET  /report                   the same as a page: P(liked) per best-of-n and its ratio to best-of-1
    GET  /v1/versions              what each system serves now
    GET  /healthz /readyz /metrics liveness, readiness (models loaded), Prometheus text format
    GET  /reports/...              the registry's per-version reports, so the Dagster UI's links open over HTTP
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import tempfile
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from components.common.errors import LyraError
from components.serving.batcher import Batcher
from components.serving.engine import Request, RequestError
from components.serving.listeners import liked_by_best_of, liked_ratio, preference
from components.serving.room import ListeningRoom
from components.serving.votes import VoteError, VoteStore

log = logging.getLogger("lyra.serve")
PAGE = Path(__file__).with_name("page.html")
COOKIE = "lyra_listener"
GENERATE_FIELDS = {"prompt": str, "seconds": (int, float), "seed": int, "best_of": int, "system": str}
VOTE_FIELDS = {"pair": str, "choice": str, "rating_a": (int, type(None)), "rating_b": (int, type(None))}
REFERENCE_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


class Service:
    """The engine, its batcher, the vote store and the counters the routes share."""

    def __init__(self, cfg, engine, store: VoteStore, reports: Path | None = None, audio_dir: Path | None = None):
        self.cfg, self.engine, self.store = cfg, engine, store
        self.reports = reports
        self.batcher = Batcher(engine.generate, max_rows=cfg.max_batch_rows, window_s=cfg.batch_window_ms / 1000)
        self.room = ListeningRoom(cfg, engine, self.batcher, store, audio_dir or Path(cfg.audio_dir))
        self.outcomes = {"ok": 0, "refused": 0, "failed": 0}
        self.load_error: str | None = None

    async def watch(self) -> None:
        """Load the models, then ask the registry every `watch_seconds` whether a promotion moved the stage."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                for line in await loop.run_in_executor(None, self.engine.refresh):
                    log.info("serving %s", line)
                self.load_error = None
            except Exception as exc:     # noqa: BLE001 - keep serving the loaded version; /readyz says why
                self.load_error = f"{type(exc).__name__}: {exc}"
                log.warning("could not refresh the served models: %s", self.load_error)
            await asyncio.sleep(self.cfg.watch_seconds)

    async def generate(self, request: Request):
        try:
            result = await self.batcher.submit(self.engine.check(request))
        except RequestError:
            self.outcomes["refused"] += 1
            raise
        except Exception:
            self.outcomes["failed"] += 1
            raise
        self.outcomes["ok"] += 1
        return result


def _fields(body, allowed: dict, required: tuple[str, ...]) -> dict:
    """A JSON object with only known fields of the right types, or RequestError naming the field."""
    if not isinstance(body, dict):
        raise RequestError("body: expected a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise RequestError(f"{unknown[0]}: unknown field (known: {', '.join(allowed)})")
    for name in required:
        if name not in body:
            raise RequestError(f"{name}: required")
    for name, value in body.items():
        if isinstance(value, bool) or not isinstance(value, allowed[name]):
            raise RequestError(f"{name}: {json.dumps(value)[:40]} has the wrong type")
    return body


async def _json(request: HttpRequest, limit: int = 64_000):
    raw = await request.body()
    if len(raw) > limit:
        raise RequestError(f"body: {len(raw)} bytes, at most {limit}")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise RequestError("body: not JSON") from None


def _wav(result) -> Response:
    from components.common.audio import write_wav

    with tempfile.TemporaryDirectory() as tmp:
        path = write_wav(Path(tmp) / "out.wav", result.audio, result.sample_rate)
        data = path.read_bytes()
    headers = {"X-Lyra-Version": result.version, "X-Lyra-Seed": str(result.seed), "X-Lyra-Best-Of": str(result.best_of),
               "X-Lyra-Batch-Rows": str(result.batch_rows)}
    if result.scores:
        headers["X-Lyra-Oraql-Scores"] = ",".join(f"{s:.4f}" for s in result.scores)
    return Response(data, media_type="audio/wav", headers=headers)


def build_app(service: Service, *, load_on_start: bool = True) -> Starlette:
    def refused(exc: Exception, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=status)

    async def page(request: HttpRequest):
        response = HTMLResponse(PAGE.read_text())
        if COOKIE not in request.cookies:
            response.set_cookie(COOKIE, secrets.token_hex(8), max_age=365 * 86400, httponly=True, samesite="strict")
        return response

    def not_ready() -> JSONResponse | None:
        if service.engine.ready:
            return None
        why = f": {service.load_error}" if service.load_error else ""
        return JSONResponse({"error": f"not ready: the served models are loading{why}"}, status_code=503)

    async def generate(request: HttpRequest):
        if (busy := not_ready()) is not None:
            return busy
        try:
            body = _fields(await _json(request), GENERATE_FIELDS, ("prompt",))
            result = await service.generate(Request(body["prompt"], float(body.get("seconds", 5.0)),
                                                    body.get("seed", 0), body.get("best_of", 1),
                                                    body.get("system", "model")))
        except RequestError as exc:
            return refused(exc)
        return _wav(result)

    async def generate_reference(request: HttpRequest):
        if (busy := not_ready()) is not None:
            return busy
        q = request.query_params
        try:
            name = Path(q.get("filename", ""))
            if name.suffix.lower() not in REFERENCE_SUFFIXES:
                raise RequestError(f"reference {name.name or '(no filename)'}: give ?filename= ending in "
                                   f"{', '.join(REFERENCE_SUFFIXES)}")
            data = bytearray()
            async for chunk in request.stream():
                data += chunk
                if len(data) > service.cfg.max_upload_bytes:
                    raise RequestError(f"reference {name.name}: larger than {service.cfg.max_upload_bytes} bytes")
            if not data:
                raise RequestError(f"reference {name.name}: empty upload")
            try:
                seconds, seed = float(q.get("seconds", 5.0)), int(q.get("seed", 0))
            except ValueError:
                raise RequestError("seconds / seed: not numbers") from None
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"upload{name.suffix.lower()}"
                path.write_bytes(bytes(data))
                try:
                    codes = await asyncio.get_running_loop().run_in_executor(None, service.engine.reference_codes, path)
                except RequestError:
                    raise
                except (LyraError, ValueError, RuntimeError, OSError) as exc:
                    raise RequestError(f"reference {name.name}: {exc}".replace(str(path), name.name)) from None
            result = await service.generate(Request(q.get("prompt", ""), seconds, seed, 1, "model", codes))
        except RequestError as exc:
            return refused(exc)
        return _wav(result)

    async def next_pair(request: HttpRequest):
        listener = request.cookies.get(COOKIE)
        if not listener:
            return refused(RequestError("listener: open the listening page first (it sets the listener cookie)"))
        if (busy := not_ready()) is not None:
            return busy
        return JSONResponse(await service.room.next_pair(listener))

    async def pair_audio(request: HttpRequest):
        path = service.room.audio_path(request.path_params["pair"], request.path_params["side"])
        if path is None or not path.is_file():
            return refused(RequestError("no such pair audio"), 404)
        return FileResponse(path, media_type="audio/wav")

    async def vote(request: HttpRequest):
        listener = request.cookies.get(COOKIE)
        try:
            if not listener:
                raise RequestError("listener: open the listening page first (it sets the listener cookie)")
            body = _fields(await _json(request, limit=1000), VOTE_FIELDS, ("pair", "choice"))
            judgement = service.store.vote(body["pair"], listener, body["choice"], body.get("rating_a"),
                                           body.get("rating_b"))
        except RequestError as exc:
            return refused(exc)
        except VoteError as exc:
            return refused(exc, exc.status)
        return JSONResponse({"judgement": judgement, "tally": tally_of(service)})

    async def tally(request: HttpRequest):
        return JSONResponse(tally_of(service))

    async def report(request: HttpRequest):
        from components.serving.report import render

        return HTMLResponse(render(service.store.judgements(), service.engine.versions()))

    async def versions(request: HttpRequest):
        return JSONResponse({"serving": service.engine.versions(), "refs": service.engine.refs,
                             "swaps": service.engine.swaps})

    async def healthz(request: HttpRequest):
        return PlainTextResponse("ok")

    async def readyz(request: HttpRequest):
        if service.engine.ready:
            return PlainTextResponse("ready: " + ", ".join(f"{k} {v}" for k, v in service.engine.versions().items()))
        return PlainTextResponse(f"loading{': ' + service.load_error if service.load_error else ''}", status_code=503)

    async def metrics(request: HttpRequest):
        return PlainTextResponse(metrics_text(service), media_type="text/plain; version=0.0.4")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        service.batcher.start()
        watcher = asyncio.get_running_loop().create_task(service.watch()) if load_on_start else None
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
            await service.batcher.stop()

    routes = [
        Route("/", page), Route("/v1/generate", generate, methods=["POST"]),
        Route("/v1/generate/reference", generate_reference, methods=["POST"]),
        Route("/v1/pairs/next", next_pair), Route("/v1/pairs/{pair}/{side}.wav", pair_audio),
        Route("/v1/votes", vote, methods=["POST"]), Route("/v1/tally", tally), Route("/report", report), Route("/v1/versions", versions),
        Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics),
    ]
    if service.reports is not None:
        routes.append(Mount("/reports", app=StaticFiles(directory=service.reports, html=True, check_dir=False)))
    return Starlette(routes=routes, lifespan=lifespan)


def tally_of(service: Service) -> dict:
    judgements = service.store.judgements()
    served = service.engine.versions()
    arms = liked_by_best_of(judgements)
    out = {"judgements": len(judgements), "serving": served, "liked_by_best_of": arms, "liked_ratio": liked_ratio(arms)}
    if "candidate" in served:
        out["candidate_preferred"] = preference(judgements, served["candidate"], served["model"]).to_json()
    return out


def metrics_text(service: Service) -> str:
    """Prometheus' text exposition format (0.0.4), written out: the lock has no prometheus_client."""
    s, lat = service.batcher.stats, sorted(service.batcher.stats.latencies)
    lines = ["# TYPE lyra_serve_requests_total counter"]
    lines += [f'lyra_serve_requests_total{{outcome="{k}"}} {v}' for k, v in service.outcomes.items()]
    lines += ["# TYPE lyra_serve_batches_total counter", f"lyra_serve_batches_total {s.batches}",
              "# TYPE lyra_serve_batch_rows_total counter", f"lyra_serve_batch_rows_total {s.rows}",
              "# TYPE lyra_serve_generate_busy_seconds_total counter",
              f"lyra_serve_generate_busy_seconds_total {s.busy_seconds:.6f}",
              "# TYPE lyra_serve_queue_waiting gauge", f"lyra_serve_queue_waiting {service.batcher.waiting}",
              "# TYPE lyra_serve_request_latency_seconds summary"]
    for q in (0.5, 0.95):
        value = lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")
        lines.append(f'lyra_serve_request_latency_seconds{{quantile="{q}"}} {value:.6f}')
    lines += ["# TYPE lyra_serve_model_info gauge"]
    lines += [f'lyra_serve_model_info{{system="{k}",version="{v}"}} 1' for k, v in service.engine.versions().items()]
    lines += ["# TYPE lyra_serve_swaps_total counter", f"lyra_serve_swaps_total {service.engine.swaps}",
              "# TYPE lyra_serve_ready gauge", f"lyra_serve_ready {int(service.engine.ready)}"]
    return "\n".join(lines) + "\n"
