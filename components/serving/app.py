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
import hashlib
import hmac
import json
import logging
import secrets
import tempfile
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as HttpRequest
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from components.common.errors import LyraError
from components.listening.statistics import liked_by_best_of, liked_ratio, preference
from components.listening.votes import VoteError, VoteStore
from components.serving.batcher import Batcher, Busy
from components.serving.engine import Request, RequestError
from components.serving.room import ListeningRoom, NoPairs

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
        self.batcher = Batcher(engine.generate, max_rows=cfg.max_batch_rows, window_s=cfg.batch_window_ms / 1000,
                               max_queue=cfg.max_queue)
        self.room = ListeningRoom(cfg, engine, self.batcher, store, audio_dir or Path(".lyra/listening/audio"))
        self.outcomes = {"ok": 0, "refused": 0, "busy": 0, "failed": 0}
        self.load_error: str | None = None
        self._key: bytes | None = None

    # listener ids: a random token and its HMAC under a key kept in the vote store, so an id the service did
    # not issue (a made-up cookie) is refused
    def _signing_key(self) -> bytes:
        if self._key is None:
            self._key = self.store.signing_key()
        return self._key

    def new_listener(self) -> str:
        token = secrets.token_hex(8)
        return f"{token}.{hmac.new(self._signing_key(), token.encode(), hashlib.sha256).hexdigest()[:32]}"

    def listener(self, cookie: str | None) -> str:
        """The listener id a signed cookie carries, or RequestError."""
        token, _, signature = (cookie or "").partition(".")
        want = hmac.new(self._signing_key(), token.encode(), hashlib.sha256).hexdigest()[:32]
        if not token or not hmac.compare_digest(signature, want):
            raise RequestError("listener: open the listening page first (it issues your listener id)")
        return token

    async def watch(self) -> None:
        """Load the models, then ask the registry every `watch_seconds` whether a promotion moved the stage."""
        loop = asyncio.get_running_loop()
        while True:
            for line in await loop.run_in_executor(None, self.engine.refresh):
                log.info("serving %s", line)
            failed = "; ".join(f"{system}: {why}" for system, (_, why) in self.engine.failed.items())
            if failed and failed != self.load_error:
                log.warning("could not load: %s", failed)
            self.load_error = failed or None
            await asyncio.sleep(self.cfg.watch_seconds)

    async def generate(self, request: Request):
        try:
            result = await self.batcher.submit(self.engine.check(request))
        except RequestError:
            self.outcomes["refused"] += 1
            raise
        except Busy:
            self.outcomes["busy"] += 1
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


async def _body(request: HttpRequest, limit: int, what: str = "body") -> bytes:
    """The request body, refused as soon as it is known to pass `limit` (by its Content-Length, or while it
    streams), never buffered whole first."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(f"{what}: {declared} bytes, at most {limit}")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise RequestError(f"{what}: larger than {limit} bytes")
    return bytes(data)


async def _json(request: HttpRequest, limit: int = 64_000):
    raw = await _body(request, limit)
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
        try:
            await run_in_threadpool(service.listener, request.cookies.get(COOKIE))
        except RequestError:                       # none yet, or not one this service issued: a new id
            cookie = await run_in_threadpool(service.new_listener)
            response.set_cookie(COOKIE, cookie, max_age=365 * 86400, httponly=True, samesite="strict")
        return response

    def unavailable(exc: Exception) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=503, headers={"Retry-After": "5"})

    def not_ready() -> JSONResponse | None:
        if service.batcher.broken:
            return JSONResponse({"error": service.batcher.broken}, status_code=503)
        if service.engine.ready:
            return None
        why = f": {service.load_error}" if service.load_error else ""
        return JSONResponse({"error": f"not ready: the served models are loading{why}"}, status_code=503)

    async def respond(build) -> Response:
        """Both generate routes: `build()` turns the HTTP request into a Request (or RequestError); the answer is
        the WAV, 400 naming the field, or 503 while loading or busy."""
        if (busy := not_ready()) is not None:
            return busy
        try:
            result = await service.generate(await build())
        except RequestError as exc:
            return refused(exc)
        except Busy as exc:
            return unavailable(exc)
        return _wav(result)

    async def generate(request: HttpRequest):
        async def build() -> Request:
            body = _fields(await _json(request), GENERATE_FIELDS, ("prompt",))
            try:
                seconds = float(body.get("seconds", 5.0))
            except OverflowError:
                raise RequestError(f"seconds: {str(body['seconds'])[:20]} is not a length") from None
            return Request(body["prompt"], seconds, body.get("seed", 0), body.get("best_of", 1),
                           body.get("system", "model"))

        return await respond(build)

    async def generate_reference(request: HttpRequest):
        async def build() -> Request:
            q = request.query_params
            name = Path(q.get("filename", ""))
            if name.suffix.lower() not in REFERENCE_SUFFIXES:
                raise RequestError(f"reference {name.name or '(no filename)'}: give ?filename= ending in "
                                   f"{', '.join(REFERENCE_SUFFIXES)}")
            data = await _body(request, service.cfg.max_upload_bytes, f"reference {name.name}")
            if not data:
                raise RequestError(f"reference {name.name}: empty upload")
            try:
                seconds, seed, best_of = float(q.get("seconds", 5.0)), int(q.get("seed", 0)), int(q.get("best_of", 1))
            except (ValueError, OverflowError):
                raise RequestError("seconds / seed / best_of: not numbers") from None
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"upload{name.suffix.lower()}"
                path.write_bytes(data)
                try:     # on the generation thread: the codec is not encoding beside a batch
                    codes = await service.batcher.run_alone(service.engine.reference_codes, path)
                except RequestError:
                    raise
                except (LyraError, ValueError, RuntimeError, OSError) as exc:
                    raise RequestError(f"reference {name.name}: {exc}".replace(str(path), name.name)) from None
            return Request(q.get("prompt", ""), seconds, seed, best_of, "model", codes)

        return await respond(build)

    async def next_pair(request: HttpRequest):
        try:
            listener = await run_in_threadpool(service.listener, request.cookies.get(COOKIE))
        except RequestError as exc:
            return refused(exc)
        if (busy := not_ready()) is not None:
            return busy
        try:
            return JSONResponse(await service.room.next_pair(listener))
        except (Busy, NoPairs) as exc:
            return unavailable(exc)

    async def pair_audio(request: HttpRequest):
        path = await run_in_threadpool(service.room.audio_path, request.path_params["pair"], request.path_params["side"])
        if path is None or not path.is_file():
            return refused(RequestError("no such pair audio"), 404)
        return FileResponse(path, media_type="audio/wav")

    async def vote(request: HttpRequest):
        try:
            listener = await run_in_threadpool(service.listener, request.cookies.get(COOKIE))
            body = _fields(await _json(request, limit=1000), VOTE_FIELDS, ("pair", "choice"))
            judgement = await run_in_threadpool(service.store.vote, body["pair"], listener, body["choice"],
                                                body.get("rating_a"), body.get("rating_b"))
        except RequestError as exc:
            return refused(exc)
        except VoteError as exc:
            return refused(exc, exc.status)
        return JSONResponse({"judgement": judgement, "tally": await run_in_threadpool(tally_of, service)})

    async def tally(request: HttpRequest):
        return JSONResponse(await run_in_threadpool(tally_of, service))

    async def report(request: HttpRequest):
        from components.listening.report import render

        judgements = await run_in_threadpool(service.store.judgements)
        return HTMLResponse(render(judgements, service.engine.versions()))

    async def versions(request: HttpRequest):
        return JSONResponse({"serving": service.engine.versions(), "refs": service.engine.refs,
                             "swaps": service.engine.swaps})

    async def healthz(request: HttpRequest):
        return PlainTextResponse("ok")

    async def readyz(request: HttpRequest):
        if service.batcher.broken:
            return PlainTextResponse(service.batcher.broken, status_code=503)
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
