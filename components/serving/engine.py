"""The models `lyra serve` holds, how they are found and swapped, and how one batch of requests is generated.

    "lyra@production" --registry--> (version v0.0.3, stored folder) --load--> Served(model, codec, ORAQL)
    requests [R] (each best-of-n_i) --> rows [sum n_i] --one Sampler pass--> codes --decode--> audio [sum n_i]
            --ORAQL per request (n_i > 1)--> one piece per request

A request's rows draw from one generator seeded with its own seed (components/lyra/sampling.py
`uniforms`), so a request alone gives exactly what `lyra generate --seed S [--best-of N]` gives. In a
batch it is still its own seeded draw from the same model, and the same batch always gives the same
pieces, but not the solo piece: a batch of more than 8 rows leaves the int8 step weights
(decoder.py) and any batch rounds its matmuls differently, and one flipped draw changes the rest.

A swap loads the new version beside the old one and replaces it in one assignment: a batch that started
on the old version finishes on it, the next one uses the new version, and no request is dropped.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path

import numpy as np

from components.common.errors import LyraError
from components.serving.config import ServeConfig


class RequestError(LyraError, ValueError):
    """A request the service refuses (HTTP 400), with a message naming the field."""


@dataclasses.dataclass(frozen=True)
class Request:
    prompt: str
    seconds: float
    seed: int = 0
    best_of: int = 1
    system: str = "model"                 # "model" or "candidate"
    reference: object = None              # codes [1, K, R] of an uploaded reference song (Influence models)

    @property
    def has_text(self) -> bool:
        return bool(self.prompt.strip())

    def group(self) -> tuple:
        """Requests with the same key share a forward pass: one model, one length (`Engine.check` rounds it to
        the millisecond), with text or without, with a reference or without."""
        return self.system, self.seconds, self.has_text, self.reference is not None


@dataclasses.dataclass
class Result:
    audio: np.ndarray
    sample_rate: int
    version: str                          # e.g. lyra@v0.0.3
    seed: int
    best_of: int
    scores: list[float] | None            # ORAQL's overall score of each candidate (best-of-n > 1)
    chosen: int
    batch_rows: int                       # rows of the forward pass this request shared
    generation_seconds: float


@dataclasses.dataclass
class Served:
    """One loaded version of the model with the codec and ORAQL it is served with."""
    ref: str
    version: str
    identity: str                         # what changes when the holder changes (version or folder digest)
    model: object
    codec: object
    oraql: object | None
    sampler: object
    loaded_at: float


def _label(ref: str, version: str) -> str:
    return f"{ref.partition('@')[0]}@{version}" if "@" in ref else version


class Resolver:
    """A model argument -> (version label, identity) cheaply, and -> its folder once, when it is loaded.

    A registry reference is identified by the version holding the stage (a git lookup, no hashing) and its
    folder is that exact version's, verified against its digests; a folder is identified by its weights'
    digest, so replacing them is a swap too."""

    def __init__(self, repo: str | os.PathLike = "."):
        self.repo = Path(repo)

    def _registry_ref(self, ref: str) -> bool:
        return "@" in ref and not Path(ref).exists()

    def identify(self, ref: str) -> tuple[str, str]:
        from components.common.lineage import file_digest
        from components.registry.config import STAGES
        from components.registry.registry import Registry, RegistryError

        if self._registry_ref(ref):
            name, _, which = ref.partition("@")
            version = Registry(self.repo).holder(name, which) if which in STAGES else which
            if version is None:
                raise RegistryError(f"{ref}: no version of {name} holds {which} (lyra promote {name} VERSION --to {which})")
            return f"{name}@{version}", f"{name}@{version}"
        folder = Path(ref)
        weights = [folder / f for f in ("model.safetensors", "config.json") if (folder / f).is_file()]
        if not weights:
            raise RequestError(f"{ref}: not a registry reference (name@stage) and no model folder")
        identity = ":".join(file_digest(w)[:12] for w in weights)
        return f"{folder.name}@{identity[:12]}", identity

    def folder(self, ref: str, label: str) -> Path:
        """The folder of the version `identify` named (never a second lookup of who holds the stage)."""
        from components.registry.registry import Registry

        return Registry(self.repo).resolve(label) if self._registry_ref(ref) else Path(ref)


class Engine:
    """The loaded systems ("model" and an optional "candidate") and the one place that generates."""

    def __init__(self, cfg: ServeConfig, generate_cfg, resolver=None):
        self.cfg, self.generate_cfg = cfg, generate_cfg
        self.resolver = resolver or Resolver()
        self.refs = {"model": cfg.model, **({"candidate": cfg.candidate} if cfg.candidate else {})}
        self.served: dict[str, Served] = {}
        self.swaps = 0
        self.failed: dict[str, tuple[str, str]] = {}    # system -> (identity that failed to load, why)
        self._loading = threading.Lock()

    @property
    def ready(self) -> bool:
        return set(self.served) == set(self.refs)

    def versions(self) -> dict[str, str]:
        return {system: s.version for system, s in self.served.items()}

    def load_all(self) -> None:
        for system, ref in self.refs.items():
            self.served[system] = self._load(ref)

    def _folder(self, ref: str) -> Path:
        return self.resolver.folder(ref, self.resolver.identify(ref)[0])

    def _load(self, ref: str) -> Served:
        import torch

        from components.lyra.generation import load_model, sampling_params
        from components.lyra.sampling import Sampler
        from components.omnicodec import decoding as codec_io

        version, identity = self.resolver.identify(ref)
        model = load_model(self.resolver.folder(ref, version), precision=self.generate_cfg.precision)
        codec = codec_io.load_codec(self._folder(self.cfg.codec), device=next(model.parameters()).device)
        codec_io.check_compatible(codec, model.config)
        oraql = None
        if self.cfg.max_best_of > 1:
            from components.oraql.model import load_oraql

            oraql = load_oraql(self._folder(self.cfg.oraql))
        with torch.inference_mode():      # the int8 step weights are built once per version, not per request
            sampler = Sampler(model, sampling_params(self.generate_cfg))
        served = Served(ref, version, identity, model, codec, oraql, sampler, time.time())
        # one short piece before it takes requests: loads the text encoder, warms the kernels (the first
        # request otherwise pays ~1 s more)
        self._generate_on(served, [Request("warm-up", 0.2, best_of=2 if oraql is not None else 1)])
        return served

    def refresh(self) -> list[str]:
        """Reload every system whose reference now resolves to another version (a promotion, a re-registered
        folder); returns what was swapped, e.g. ["model: lyra@v0.0.2 -> lyra@v0.0.3"]. Each system on its own:
        one that fails keeps serving what it has, and the identity that failed is not retried until it
        changes (its error stays in `failed` for /readyz)."""
        swapped = []
        with self._loading:                          # one loader at a time; generation goes on meanwhile
            for system, ref in self.refs.items():
                current = self.served.get(system)
                try:
                    _, identity = self.resolver.identify(ref)
                except Exception as exc:             # noqa: BLE001 - the registry is unreachable or says no
                    self.failed[system] = ("", f"{type(exc).__name__}: {exc}")
                    continue
                if (current is not None and identity == current.identity) or self.failed.get(system, ("",))[0] == identity:
                    continue
                try:
                    fresh = self._load(ref)
                except Exception as exc:             # noqa: BLE001 - reported, retried when the holder changes
                    self.failed[system] = (identity, f"{type(exc).__name__}: {exc}")
                    continue
                self.failed.pop(system, None)
                self.served[system] = fresh          # one assignment: the next batch uses it
                self.swaps += current is not None
                swapped.append(f"{system}: {current.version if current else 'none'} -> {fresh.version}")
        return swapped

    def check(self, request: Request) -> Request:
        """Refuse what cannot be served, naming the field."""
        cfg = self.cfg
        if request.system not in self.refs:
            raise RequestError(f"system {request.system!r}: this service serves {', '.join(self.refs)}")
        if not isinstance(request.prompt, str) or (not request.prompt.strip() and request.reference is None):
            raise RequestError("prompt: give the music to play, e.g. \"a calm piano piece in C major\"")
        if len(request.prompt) > cfg.max_prompt_chars:
            raise RequestError(f"prompt: {len(request.prompt)} characters, at most {cfg.max_prompt_chars}")
        if not 0 < request.seconds <= cfg.max_seconds:
            raise RequestError(f"seconds: {request.seconds:g} is not in (0, {cfg.max_seconds:g}]")
        if not 1 <= request.best_of <= cfg.max_best_of:
            raise RequestError(f"best_of: {request.best_of} is not from 1 to {cfg.max_best_of}")
        if not 0 <= request.seed < 2 ** 63:
            raise RequestError(f"seed: {request.seed} must be a whole number >= 0")
        if request.best_of > cfg.max_batch_rows:
            raise RequestError(f"best_of: {request.best_of} rows exceed one batch ({cfg.max_batch_rows})")
        # one length per batch: rounded here, so requests 0.0004 s apart share a pass and get the same length
        return dataclasses.replace(request, seconds=round(float(request.seconds), 3))

    def reference_codes(self, path: Path, system: str = "model"):
        """An uploaded song -> the excerpt codes the served Influence model reads; refused by name when the
        served model has no reference conditioner or the file cannot be read."""
        from components.influence.reference_audio import reference_codes

        served = self.served[system]
        mc = served.model.config
        if not mc.reference_tokens:
            raise RequestError(f"reference: {served.version} has no reference conditioner; serve an Influence "
                               "model (lyra serve --model lyra_influence@production)")
        return reference_codes(path, served.codec, mc.reference_frames, mc.frame_rate)

    def generate(self, requests: list[Request]) -> list[Result]:
        """One forward pass for requests of one group (`Request.group`)."""
        # a snapshot of the served version: a swap during the batch applies from the next one
        return self._generate_on(self.served[requests[0].system], requests)

    def _generate_on(self, served: Served, requests: list[Request]) -> list[Result]:
        import torch

        from components.lyra import text
        from components.lyra.conditioners import Conditions
        from components.omnicodec.decoding import decode_pieces

        model, seconds, device = served.model, requests[0].seconds, served.sampler.device
        counts = [r.best_of for r in requests]
        if requests[0].has_text:
            embeddings = text.encode_prompts([r.prompt for r in requests])
        else:                                         # a reference alone: the text condition is dropped
            embeddings = np.zeros((len(requests), model.config.text_dim), np.float32)
        rows = np.repeat(embeddings, counts, axis=0)
        generators = []
        for r in requests:                            # a request's rows draw from its own generator, in order
            generators += [torch.Generator(device=device).manual_seed(int(r.seed))] * r.best_of
        conditions = Conditions.build(rows, seconds_total=float(seconds))
        if not requests[0].has_text:
            conditions = conditions.drop("text")
        if requests[0].reference is not None:
            conditions = conditions.with_reference(torch.cat([r.reference.expand(n, -1, -1)
                                                              for r, n in zip(requests, counts)]))
        n_frames = max(1, int(round(seconds * model.config.frame_rate)))
        start = time.perf_counter()
        out = served.sampler.generate(conditions, n_frames, generator=generators)
        audios = decode_pieces(served.codec, out.codes, out.lengths)
        scores = None
        if served.oraql is not None and max(counts) > 1:
            from components.oraql.score import score_batch

            scores = score_batch(served.oraql, audios, served.codec.sample_rate)[:, 0]
        took = time.perf_counter() - start
        results, first = [], 0
        for r, n in zip(requests, counts):
            own = None if n == 1 or scores is None else [float(s) for s in scores[first:first + n]]
            chosen = 0 if own is None else int(np.argmax(own))
            results.append(Result(audios[first + chosen], int(served.codec.sample_rate), served.version, r.seed, n,
                                  own, chosen, len(rows), took))
            first += n
        return results
