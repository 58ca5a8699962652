"""The listening room: blind pairs of two systems on one prompt and seed, played to listeners who choose.

    arms   with a candidate: the served version vs the candidate, best-of-1 each (does the candidate win?)
           without one, or while both serve the same version (after a promotion): best-of-1 vs best-of-2 vs
           best-of-8 of the served version, as far as one batch holds them (does selection get liked?)
    pair   two arms drawn at random, one prompt, one seed, sides shuffled; the audio is kept under
           `listening.audio_dir` by a random name, so neither its URL nor its name says which arm it is
"""

from __future__ import annotations

import asyncio
import random
import secrets
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from components.common.audio import write_wav
from components.common.errors import LyraError
from components.serving.engine import Request


class NoPairs(LyraError, RuntimeError):
    """The service cannot make a pair with its settings (HTTP 503, naming the settings)."""


class ListeningRoom:
    def __init__(self, cfg, engine, batcher, store, audio_dir: Path):
        self.cfg, self.engine, self.batcher, self.store = cfg, engine, batcher, store
        self.audio_dir = Path(audio_dir)
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        self._random = random.SystemRandom()

    def arms(self) -> list[tuple[str, int]]:
        if self.kind == "versions":
            return [("model", 1), ("candidate", 1)]
        biggest = min(self.cfg.max_best_of, self.cfg.max_batch_rows)
        return [("model", n) for n in (1, 2, 8) if n <= biggest]

    @property
    def kind(self) -> str:
        versions = self.engine.versions()
        two = "candidate" in versions and versions["candidate"] != versions.get("model")
        return "versions" if two else "best_of"

    async def next_pair(self, listener: str) -> dict:
        """A pair of the versions served now that the listener has not judged (made if there is none)."""
        kind = self.kind
        pair = await run_in_threadpool(self.store.unjudged_pair, listener, set(self.engine.versions().values()), kind)
        if pair is None:
            pair = await self.make_pair()
        await run_in_threadpool(self.store.played, pair["id"], listener)
        return {"id": pair["id"], "prompt": pair["prompt"], "seconds": pair["seconds"],
                "a": f"/v1/pairs/{pair['id']}/a.wav", "b": f"/v1/pairs/{pair['id']}/b.wav"}

    async def make_pair(self) -> dict:
        arms = self.arms()
        if len(arms) < 2:
            raise NoPairs("a pair needs two arms: serve a --candidate, or allow best-of 2 or more "
                          "(serve.max_best_of and serve.max_batch_rows)")
        (system_a, n_a), (system_b, n_b) = self._random.sample(arms, 2)
        prompt, seed = self._random.choice(self.cfg.pair_prompts), self._random.randrange(2 ** 31)
        requests = [self.engine.check(Request(prompt, self.cfg.pair_seconds, seed, n, system))
                    for system, n in ((system_a, n_a), (system_b, n_b))]
        results = await asyncio.gather(*(self.batcher.submit(r) for r in requests))
        sides = {}
        for side, system, n, result in (("a", system_a, n_a, results[0]), ("b", system_b, n_b, results[1])):
            name = f"{secrets.token_hex(12)}.wav"
            write_wav(self.audio_dir / name, result.audio, result.sample_rate)
            sides[side] = {"system": system, "version": result.version, "best_of": n, "audio": name}
        kind = "versions" if sides["a"]["version"] != sides["b"]["version"] else "best_of"
        pair_id = await run_in_threadpool(lambda: self.store.add_pair(kind=kind, prompt=prompt, seed=seed,
                                                                      seconds=self.cfg.pair_seconds, a=sides["a"],
                                                                      b=sides["b"]))
        return await run_in_threadpool(self.store.pair, pair_id)

    def audio_path(self, pair_id: str, side: str) -> Path | None:
        pair = self.store.pair(pair_id)
        if pair is None or side not in ("a", "b"):
            return None
        return self.audio_dir / pair[f"audio_{side}"]
