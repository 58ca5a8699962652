"""Build the demo corpus: pick pieces, render each under several instruments, split by piece.

    candidates (catalogue order) ──workers──► rendered pieces, in order ──► stop at n_pieces
                                                                           (or at `hours` of audio)
    ──► split by piece (train / valid / test)
    next candidates ──workers──► ood_pieces more, under timbres no training track uses ──► split "ood"
    ──► audio/<track_id>.wav + .json sidecar, tracks.parquet

Pieces are consumed strictly in catalogue order, whatever the number of workers, so the corpus
depends on the seed and the config only. A score that fails to parse or render is skipped,
logged and counted; it never stops the build.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import dataclasses
import hashlib
import logging
import math
import random
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

from components.common.atomic import atomic_write_json
from components.common.audio import write_wav
from components.corpus.catalogue import COLLECTIONS, INSTRUMENTS, Candidate, candidate_order, licence_note
from components.corpus.config import CorpusConfig

log = logging.getLogger("lyra.corpus")

TRACK_COLUMNS = ("track_id", "piece_id", "title", "composer", "collection", "instrument", "program", "key", "mode",
                 "meter", "tempo_bpm", "duration_s", "sample_rate", "split", "licence", "source")
from components.common.splits import SPLITS

T = TypeVar("T")
R = TypeVar("R")


@dataclasses.dataclass
class PieceResult:
    candidate: Candidate
    tracks: list[dict]          # one row per instrument, `split` still unset
    skipped_reason: str | None  # why the piece was skipped, None when rendered
    seconds: float = 0.0        # wall time spent on the piece


def render_piece(candidate: Candidate, config: CorpusConfig, audio_dir: Path, instruments: list[str],
                 per_piece: int) -> PieceResult:
    """Parse, label and render one piece under `per_piece` of `instruments`; never raises."""
    from components.corpus.render import peak_normalise, render_midi
    from components.corpus.score import export_midi, load_score, score_facts

    start = time.perf_counter()
    written: list[Path] = []
    try:
        score = load_score(candidate)
        facts = score_facts(score, candidate, config.seed)
        midi_bytes = export_midi(score)
        rng = random.Random(f"{config.seed}:instruments:{candidate.piece_id}")
        rows = []
        for name in rng.sample(instruments, per_piece):
            instrument = INSTRUMENTS[name]
            audio = render_midi(
                midi_bytes, instrument.program, sample_rate=config.sample_rate, max_s=config.max_track_s,
                release_s=config.release_s, bar_offsets_ql=facts.bar_offsets,
                tempo_bpm=None if facts.tempo_from_score else facts.tempo_bpm,
            )
            duration_s = len(audio) / config.sample_rate
            if duration_s < config.min_track_s:
                raise ValueError(f"too short: {duration_s:.1f} s < min_track_s={config.min_track_s}")
            track_id = f"{candidate.piece_id}__{name}"
            written.append(write_wav(audio_dir / f"{track_id}.wav", peak_normalise(audio, config.peak_dbfs),
                                     config.sample_rate))
            rows.append({
                "track_id": track_id, "piece_id": candidate.piece_id, "title": facts.title,
                "composer": facts.composer, "collection": COLLECTIONS[candidate.collection].label,
                "instrument": name, "program": instrument.program, "key": facts.key, "mode": facts.mode,
                "meter": facts.meter, "tempo_bpm": facts.tempo_bpm, "duration_s": round(duration_s, 4),
                "sample_rate": config.sample_rate, "split": None, "licence": licence_note(candidate),
                "source": candidate.source,
            })
        return PieceResult(candidate, rows, None, time.perf_counter() - start)
    except Exception as exc:  # a bad score is skipped with its reason, whatever went wrong
        for path in written:
            path.unlink(missing_ok=True)
        return PieceResult(candidate, [], f"{type(exc).__name__}: {exc}"[:300], time.perf_counter() - start)


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """`map(fn, items)` on `workers` processes, results in input order, at most 2*workers in flight.

    Items are pulled lazily, so the consumer can stop early (a duration target) without the
    whole candidate list having been rendered; on exit the pool finishes what is in flight.
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    iterator = iter(items)
    with cf.ProcessPoolExecutor(max_workers=workers) as pool:
        pending: collections.deque = collections.deque()
        for item in iterator:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * workers:
                break
        while pending:
            result = pending.popleft().result()
            nxt = next(iterator, None)
            if nxt is not None:
                pending.append(pool.submit(fn, nxt))
            yield result


class _RenderTask:
    """Picklable closure for the worker processes."""

    def __init__(self, config: CorpusConfig, audio_dir: Path, instruments: list[str], per_piece: int):
        self.config, self.audio_dir, self.instruments, self.per_piece = config, audio_dir, instruments, per_piece

    def __call__(self, candidate: Candidate) -> PieceResult:
        return render_piece(candidate, self.config, self.audio_dir, self.instruments, self.per_piece)


def assign_splits(piece_ids: list[str], config: CorpusConfig) -> dict[str, str]:
    """piece_id -> split. Pieces are ranked by a seeded hash; the lowest go to test, then valid.

    Counts are round(fraction * n), at least `min_eval_pieces` each for valid and test, while
    leaving at least one piece for training.
    """
    n = len(piece_ids)
    want = {s: round(config.split_fractions[s] * n) for s in ("valid", "test")}
    for s in want:
        if config.split_fractions[s] > 0:
            want[s] = max(want[s], config.min_eval_pieces)
    while want["valid"] + want["test"] > max(n - 1, 0) and want["valid"] + want["test"] > 0:
        larger = "valid" if want["valid"] >= want["test"] else "test"
        want[larger] -= 1
    ranked = sorted(piece_ids, key=lambda p: hashlib.sha1(f"{config.seed}:split:{p}".encode()).hexdigest())
    splits = {}
    for i, piece in enumerate(ranked):
        splits[piece] = "test" if i < want["test"] else "valid" if i < want["test"] + want["valid"] else "train"
    return splits


@dataclasses.dataclass
class CorpusBuild:
    tracks: list[dict]
    skipped: list[dict]   # {"source", "reason"}
    candidates_tried: int
    build_seconds: float
    render_seconds: float  # summed over pieces: the CPU time the workers spent


def render_until(candidates: Iterator[Candidate], task: _RenderTask, workers: int, n_pieces: int,
                 target_s: float | None, progress: Callable, desc: str) -> tuple[list[PieceResult], int]:
    """Render candidates in order until `n_pieces` rendered (or `target_s` seconds of audio when set).

    Returns (results of every tried candidate, in order; how many that is). Pieces the workers
    rendered in flight after the stop are dropped from `candidates` and not returned (their files
    are swept later).
    """
    expected = n_pieces if target_s is None else \
        math.ceil(target_s / (task.per_piece * 0.85 * task.config.max_track_s))
    rendered = ordered_map(task, candidates, workers)
    results: list[PieceResult] = []
    done_pieces, total_s = 0, 0.0
    bar = progress(rendered, desc=desc, total=expected, unit="piece")
    for result in bar:
        results.append(result)
        if not result.skipped_reason:
            done_pieces += 1
            total_s += sum(t["duration_s"] for t in result.tracks)
        if (done_pieces >= n_pieces) if target_s is None else (total_s >= target_s):
            break
    rendered.close()  # the pool finishes the pieces in flight and shuts down
    return results, len(results)


def build_corpus(config: CorpusConfig, out_dir: Path, progress: Callable = lambda it, **kw: it) -> CorpusBuild:
    """Render the corpus into `out_dir` (audio/, tracks.parquet); `progress` wraps an iterable (tqdm-like)."""
    import pandas as pd

    start = time.perf_counter()
    audio_dir = out_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    target_s = config.hours * 3600 if config.hours else None
    candidates = candidate_order(config.collections, config.seed)   # one iterator: the OOD set takes what follows
    main_task = _RenderTask(config, audio_dir, config.instruments, config.instruments_per_piece)
    main, tried = render_until(candidates, main_task, config.workers, config.n_pieces, target_s, progress, "rendering")
    ood: list[PieceResult] = []
    if config.ood_pieces:
        # skip what the workers may have started beyond the stop: the OOD pieces are strictly later ones
        ood_task = _RenderTask(config, audio_dir, config.ood_instruments, config.ood_instruments_per_piece)
        ood, tried_ood = render_until(candidates, ood_task, config.workers, config.ood_pieces, None, progress,
                                      "rendering out-of-distribution")
        tried += tried_ood

    tracks: list[dict] = []
    skipped: list[dict] = []
    render_seconds = 0.0
    for result in (*main, *ood):
        render_seconds += result.seconds
        if result.skipped_reason:
            log.warning("skipped %s: %s", result.candidate.source, result.skipped_reason)
            skipped.append({"source": result.candidate.source, "reason": result.skipped_reason})
        else:
            tracks.extend(result.tracks)
    n_rendered = len({t["piece_id"] for r in main for t in r.tracks})
    if target_s is None and n_rendered < config.n_pieces:
        log.warning("the catalogue ran out: %d of %d pieces rendered", n_rendered, config.n_pieces)
    elif target_s is not None and sum(t["duration_s"] for r in main for t in r.tracks) < target_s:
        log.warning("the catalogue ran out before %.2f h of audio", config.hours)
    n_ood = len({t["piece_id"] for r in ood for t in r.tracks})
    if n_ood < config.ood_pieces:
        log.warning("the catalogue ran out: %d of %d out-of-distribution pieces rendered", n_ood, config.ood_pieces)
    # pieces rendered in flight after a stop are not part of the corpus
    keep = {f"{t['track_id']}.wav" for t in tracks}
    for stray in audio_dir.iterdir():
        if stray.name not in keep:
            stray.unlink()
    if not tracks:
        raise RuntimeError(f"no piece could be rendered ({len(skipped)} skipped); see the log for reasons")

    splits = assign_splits(sorted({t["piece_id"] for r in main for t in r.tracks}), config)
    splits.update({t["piece_id"]: "ood" for r in ood for t in r.tracks})
    for row in tracks:
        row["split"] = splits[row["piece_id"]]
        atomic_write_json(audio_dir / f"{row['track_id']}.json", row)
    table = pd.DataFrame(sorted(tracks, key=lambda r: r["track_id"]), columns=list(TRACK_COLUMNS))
    table = table.astype({"program": "int64", "sample_rate": "int64", "tempo_bpm": "float64", "duration_s": "float64"})
    table.to_parquet(out_dir / "tracks.parquet", index=False)
    return CorpusBuild(tracks=table.to_dict("records"), skipped=skipped, candidates_tried=tried,
                       build_seconds=time.perf_counter() - start, render_seconds=render_seconds)


def corpus_metrics(build: CorpusBuild, config: CorpusConfig) -> dict:
    tracks = build.tracks
    seconds = float(sum(t["duration_s"] for t in tracks))

    def summary(key: str) -> dict:
        out: dict = {}
        for t in tracks:
            entry = out.setdefault(t[key], {"tracks": 0, "pieces": set(), "seconds": 0.0})
            entry["tracks"] += 1
            entry["pieces"].add(t["piece_id"])
            entry["seconds"] += t["duration_s"]
        return {k: {"tracks": v["tracks"], "pieces": len(v["pieces"]), "seconds": round(v["seconds"], 1)}
                for k, v in sorted(out.items())}

    by_split = summary("split")
    return {
        "n_tracks": len(tracks),
        "n_pieces": len({t["piece_id"] for t in tracks}),
        "audio_seconds": round(seconds, 2),
        "audio_hours": round(seconds / 3600, 4),
        "mean_track_seconds": round(seconds / max(len(tracks), 1), 2),
        **{f"{s}_pieces": by_split.get(s, {}).get("pieces", 0) for s in SPLITS},
        **{f"{s}_tracks": by_split.get(s, {}).get("tracks", 0) for s in SPLITS},
        "splits": by_split,
        "collections": summary("collection"),
        "instruments": {k: v["tracks"] for k, v in summary("instrument").items()},
        "build_seconds": round(build.build_seconds, 2),
        "x_realtime": round(seconds / max(build.build_seconds, 1e-9), 1),
        "workers": config.workers,
        "x_realtime_per_worker": round(seconds / max(build.render_seconds, 1e-9), 1),
        "candidates_tried": build.candidates_tried,
        "skipped_scores": len(build.skipped),
        "skipped": build.skipped,
    }


def plot_durations(tracks: list[dict], path: Path) -> Path:
    """Track durations per collection (one dot per track), to eyeball the balance of the corpus."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = collections.defaultdict(list)
    for t in tracks:
        groups[t["collection"]].append(t["duration_s"])
    names = sorted(groups)
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.5 * len(names)))
    for i, name in enumerate(names):
        values = np.asarray(groups[name])
        jitter = np.random.default_rng(i).uniform(-0.15, 0.15, len(values))
        ax.scatter(values, i + jitter, s=12, alpha=0.7)
    ax.set_yticks(range(len(names)), [f"{n} ({len(groups[n])})" for n in names])
    ax.set_xlabel("track duration (s)")
    total_min = sum(t["duration_s"] for t in tracks) / 60
    ax.set_title(f"demo corpus: {len(tracks)} tracks, {total_min:.1f} min of audio")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


