"""The captioning stage: curated clips -> tags -> varied captions -> sentence embeddings.

    <curated>/manifest.parquet + clips/*.wav
        -> analyse every clip (librosa)             AudioFeatures      [n_clips]
        -> resolve tags (metadata first)            ClipTags           [n_clips]
        -> captioner: n phrasings per clip          captions           [n_clips, n_phrasings]
        -> MiniLM                                   embeddings float32 [n_clips, n_phrasings, 384]
    <out>/captions.parquet   one row per manifest clip, in manifest order (= embeddings rows)
          embeddings.npy     float32 [n_clips, n_phrasings, 384], rows L2-normalised
          agreement.json     audio estimates vs metadata (tempo, key, metre), overall and per instrument
          agreement.png      the same, drawn
          lineage.json

Everything is computed before the output folder is opened, so bad input leaves the previous
output untouched.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from einops import rearrange

from components.common.seeds import rng as seeded_rng
from components.captioning.agreement import flat_metrics, summarise
from components.captioning.analysis import AudioFeatures, analyse_file
from components.captioning.captioner import Captioner, make_captioner
from components.captioning.config import CaptionConfig
from components.captioning import reuse
from components.captioning.tags import METADATA_FIELDS, ClipTags, metadata_of, resolve_tags
from components.captioning.text_encoder import TextEncoder
from components.common.errors import LyraError

# catalogue fields a caption can use: captioning reports how many clips have each (unknown ones are left unsaid)
CATALOGUE_FIELDS = ("title", "artist", "album", "genre", "composer", "collection", "instrument", "mood", "tempo_bpm",
                    "key", "date", "licence")


REQUIRED_COLUMNS = ("clip_id", "path")
STAGE_NAME = "captions"


class CaptioningInputError(LyraError, ValueError):
    """The curated folder cannot be captioned as it is (message says why and what to do)."""


def load_manifest(curated: Path) -> pd.DataFrame:
    """The curated manifest, checked: required columns, unique ids, every clip file present."""
    manifest_path = curated / "manifest.parquet"
    if not curated.is_dir():
        raise CaptioningInputError(f"{curated} is not a folder; expected a curated folder (run `lyra curate` first)")
    if not manifest_path.is_file():
        raise CaptioningInputError(f"{manifest_path} not found; expected the output of `lyra curate`")
    try:
        manifest = pd.read_parquet(manifest_path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise CaptioningInputError(f"{manifest_path} cannot be read as parquet: {exc}") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in manifest.columns]
    if missing:
        raise CaptioningInputError(f"{manifest_path} lacks column(s) {', '.join(missing)}")
    if manifest.empty:
        raise CaptioningInputError(f"{manifest_path} has no clips: nothing to caption")
    dupes = manifest["clip_id"][manifest["clip_id"].duplicated()].unique().tolist()
    if dupes:
        raise CaptioningInputError(f"{manifest_path}: duplicate clip_id(s) {dupes[:5]}")
    absent = [p for p in manifest["path"].astype(str) if not (curated / p).is_file()]
    if absent:
        raise CaptioningInputError(f"{len(absent)} clip file(s) listed in the manifest are missing, "
                                   f"e.g. {absent[:3]} (under {curated})")
    return manifest.reset_index(drop=True)


def _loudness(row: dict[str, Any]) -> float | None:
    value = row.get("loudness_lufs")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _analysis_options(config: CaptionConfig) -> dict[str, Any]:
    return dict(hop_length=config.hop_length, key_profile=config.key_profile, chroma=config.chroma,
                start_bpm=config.start_bpm, harmonic_weight=config.tempo_harmonic_weight,
                with_metre=config.estimate_metre)


def _analyse_one(job: tuple[str, float | None, dict]) -> AudioFeatures | str:
    path, loudness, options = job
    try:
        return analyse_file(path, loudness, **options)
    except Exception as exc:  # reported per clip, then the stage stops with all of them listed
        return f"{type(exc).__name__}: {exc}"


def analyse_clips(curated: Path, rows: list[dict], config: CaptionConfig, run) -> list[AudioFeatures]:
    jobs = [(os.fspath(curated / str(r["path"])), _loudness(r), _analysis_options(config)) for r in rows]
    if config.workers > 1 and len(jobs) > 1:
        # The first clip is analysed here, before forking: librosa's numba kernels (beat tracking's
        # gufunc among them) compile lazily on first call, and workers compiling and writing the same
        # numba cache files at once crashed a fresh environment (a segfault in beat_track). Forked
        # workers inherit the compiled kernels instead.
        results = [_analyse_one(jobs[0])]
        with concurrent.futures.ProcessPoolExecutor(config.workers) as pool:
            results += list(run.progress(pool.map(_analyse_one, jobs[1:], chunksize=4), desc="analysing",
                                         total=len(jobs) - 1, unit="clip"))
    else:
        results = [_analyse_one(j) for j in run.progress(jobs, desc="analysing", unit="clip")]
    failed = [(r["clip_id"], res) for r, res in zip(rows, results) if isinstance(res, str)]
    if failed:
        listed = "; ".join(f"{cid}: {msg}" for cid, msg in failed[:5])
        raise CaptioningInputError(f"{len(failed)} clip(s) could not be analysed ({listed})")
    return results  # type: ignore[return-value]


def clip_rng(seed: int, clip_id: str) -> np.random.Generator:
    """A clip's caption randomness depends on (seed, clip_id) only, not on where the row sits."""
    return seeded_rng(seed, clip_id)


def caption_clips(tags: list[ClipTags], captioner: Captioner, config: CaptionConfig, run) -> list[list[str]]:
    out = []
    for t in run.progress(tags, desc="captioning", unit="clip"):
        phrasings = captioner.caption(t, config.n_phrasings, clip_rng(config.seed, t.clip_id))
        if len(phrasings) != config.n_phrasings or not all(isinstance(p, str) and p for p in phrasings):
            raise RuntimeError(f"captioner {captioner.name!r} returned {len(phrasings)} captions for {t.clip_id}, "
                               f"expected {config.n_phrasings} non-empty strings")
        out.append(phrasings)
    return out


def embed_captions(captions: list[list[str]], encoder: TextEncoder) -> np.ndarray:
    """[n_clips][n_phrasings] strings -> float32 [n_clips, n_phrasings, dim]."""
    flat = [c for phrasings in captions for c in phrasings]
    vectors = encoder.encode(flat)                                           # [(clips phrasings), dim]
    return rearrange(vectors, "(c p) d -> c p d", c=len(captions)).astype(np.float32)


def caption_table(manifest: pd.DataFrame, features: list[AudioFeatures], tags: list[ClipTags],
                  captions: list[list[str]]) -> pd.DataFrame:
    table = pd.DataFrame({
        "clip_id": manifest["clip_id"].astype(str).to_numpy(),
        "caption": [c[0] for c in captions],
        "captions": captions,
        "tags": [t.to_json() for t in tags],
        "tempo_bpm_audio": [f.tempo_bpm for f in features],
        "tempo_bpm_beats": [t.tempo_bpm if t.tempo_source == "metadata" else None for t in tags],
        "key_audio": [f.key for f in features],
        "mode_audio": [f.mode for f in features],
        "key_correlation_audio": [f.key_correlation for f in features],
        "meter_audio": [f.metre for f in features],
        "brightness_hz": [f.brightness_hz for f in features],
        "onset_rate": [f.onset_rate for f in features],
        "loudness_lufs": [f.loudness_lufs for f in features],
    })
    for column in ("piece_id", "split"):
        table[column] = manifest[column].to_numpy() if column in manifest.columns else None
    for column in METADATA_FIELDS:       # the metadata values the audio values are compared with
        if column in manifest.columns:
            table[column] = manifest[column].to_numpy()
        else:                            # known only from the `meta` JSON (or not at all)
            table[column] = pd.Series([t.metadata.get(column) for t in tags], dtype=object)
    return table


def agreement_report(table: pd.DataFrame, config: CaptionConfig) -> dict:
    # audio tempo is compared with the metadata tempo in felt beats (tempo_bpm_beats), not quarters
    records = [dict(r, tempo_bpm=r["tempo_bpm_beats"]) for r in table.to_dict("records")]
    options = dict(tolerance=config.tempo_tolerance, metrical_factors=config.tempo_metrical_factors)
    report = summarise(records, **options)
    groups: dict[str, list[dict]] = {}
    for r, t in zip(records, table["tags"]):
        groups.setdefault(json.loads(t).get("instrument") or "unknown", []).append(r)
    report["by_instrument"] = {name: flat_metrics(summarise(rows, **options)) for name, rows in sorted(groups.items())}
    report["notes"] = ("references are the source piece's metadata; a 10 s clip may sit in a passage that has "
                       "modulated, so key agreement is a lower bound on the estimator's accuracy")
    return report


def word_counts(tags: list[ClipTags]) -> dict[str, dict[str, int]]:
    """How the bucketed words spread over the corpus (a bucket everyone falls in says nothing)."""
    fields = ("tempo_word", "brightness_word", "energy_word", "loudness_word", "tempo_source", "key_source")
    return {f: dict(Counter(str(getattr(t, f)) for t in tags).most_common()) for f in fields}


def phrasing_similarity(embeddings: np.ndarray) -> dict[str, float | None]:
    """Mean cosine between phrasings of the same clip vs between first phrasings of different clips."""
    n_clips, n_phr, _ = embeddings.shape
    within = None
    if n_phr > 1:
        gram = np.einsum("cpd,cqd->cpq", embeddings, embeddings)
        within = float((gram.sum() - np.trace(gram, axis1=1, axis2=2).sum()) / (n_clips * n_phr * (n_phr - 1)))
    across = None
    if n_clips > 1:
        first = embeddings[:, 0]
        g = first @ first.T
        across = float((g.sum() - np.trace(g)) / (n_clips * (n_clips - 1)))
    return {"cosine_within_clip": None if within is None else round(within, 4),
            "cosine_across_clips": None if across is None else round(across, 4)}


def _known_features(curated: Path, rows: list[dict], config: CaptionConfig, run, earlier: list[Path]):
    """(keys, features) of `rows`: each clip's analysis taken from the first of `earlier` that has its key,
    the rest analysed; and how many were analysed."""
    keys = reuse.clip_keys(curated, rows, _analysis_options(config), _loudness)
    known: dict[str, AudioFeatures] = {}
    for folder in reversed(earlier):              # the first folder wins
        known.update(reuse.previous_features(folder))
    to_analyse = [i for i, key in enumerate(keys) if key not in known]          # new or changed clips
    fresh = iter(analyse_clips(curated, [rows[i] for i in to_analyse], config, run))
    features = [known[key] if key in known else next(fresh) for key in keys]
    if known:
        run.log.info("%d clips' analysis taken from earlier outputs (the previous one, partitions'), %d analysed",
                     len(rows) - len(to_analyse), len(to_analyse))
    return keys, features, len(to_analyse)


def analyse_partition(curated: str | os.PathLike, out: str | os.PathLike, files: frozenset[str], config: CaptionConfig,
                      run, *, previous: Path | None = None, partition: str = "") -> dict:
    """One partition's share of the stage: the audio analysis of the clips cut from `files`, into `out`'s
    analysis.parquet (what the whole stage takes by content key). Returns the metrics."""
    curated, out = Path(curated), Path(out)
    t0 = time.perf_counter()
    manifest = load_manifest(curated)
    rows = [r for r in manifest.to_dict("records") if str(r["source_file"]) in files]
    run.log.info("partition %s: analysing %d clips of %d files", partition, len(rows), len(files))
    keys, features, analysed = _known_features(curated, rows, config, run, [out] + ([previous] if previous else []))
    with run.output(out, inputs={"curated": curated}, params=config, lineage={"partition": partition}) as staged:
        reuse.write_analysis(staged.dir, rows, keys, features)
    return {"partition": partition, "n_clips": len(rows), "clips_analysed": analysed,
            "clips_analysis_reused": len(rows) - analysed, "seconds_total": round(time.perf_counter() - t0, 2)}


def run_captioning(curated: str | os.PathLike, out: str | os.PathLike, config: CaptionConfig, run,
                   *, encoder: TextEncoder | None = None, parts: list[Path] = ()) -> dict:
    """Caption a curated folder into `out` (replaced atomically), taking unchanged clips' analysis from the
    previous `out` and from `parts` (partition outputs). Returns the metrics."""
    from components.common.atomic import atomic_write_json

    curated, out = Path(curated), Path(out)
    t0 = time.perf_counter()
    manifest = load_manifest(curated)
    rows = manifest.to_dict("records")
    run.log.info("captioning %d clips from %s (%d phrasings each)", len(rows), curated, config.n_phrasings)

    keys, features, analysed = _known_features(curated, rows, config, run, [out, *parts])
    t_analysis = time.perf_counter() - t0
    metadata = [metadata_of(r) for r in rows]
    tags = [resolve_tags(str(r["clip_id"]), m, f, config, audio_path=str(r["path"]))
            for r, m, f in zip(rows, metadata, features)]
    captioner = make_captioner(config.captioner, keep_probability=config.keep_probability)
    captions = caption_clips(tags, captioner, config, run)

    t1 = time.perf_counter()
    encoder = encoder or TextEncoder(device=config.device, batch_size=config.encoder_batch_size)
    embeddings = embed_captions(captions, encoder)
    t_encode = time.perf_counter() - t1

    table = caption_table(manifest, features, tags, captions)
    report = agreement_report(table, config)
    distinct = sum(len({c.lower() for c in phr}) for phr in captions) / (len(captions) * config.n_phrasings)
    metrics = {
        "n_clips": len(rows), "n_phrasings": config.n_phrasings, "embedding_dim": int(embeddings.shape[-1]),
        "distinct_phrasing_fraction": round(distinct, 4),
        **flat_metrics(report), **phrasing_similarity(embeddings),
        "seconds_analysis": round(t_analysis, 2), "seconds_encode": round(t_encode, 2),
        "clips_analysed": analysed, "clips_analysis_reused": len(rows) - analysed,
        # how many clips the catalogue describes in each field a caption can use (unknown ones are left unsaid)
        "clips_with_metadata": {field: sum(field in m for m in metadata) for field in CATALOGUE_FIELDS},
    }

    with run.output(out, inputs={"curated": curated}, params=config,
                    lineage={"text_encoder": encoder.describe(), "captioner": captioner.name,
                             "n_clips": len(rows), "embeddings_shape": list(embeddings.shape)}) as staged:
        table.to_parquet(staged.dir / "captions.parquet", index=False)
        reuse.write_analysis(staged.dir, rows, keys, features)
        np.save(staged.dir / "embeddings.npy", embeddings)
        atomic_write_json(staged.dir / "agreement.json", {**report, "words": word_counts(tags)})
        if _try_plot(table, config, staged.dir / "agreement.png", run):
            staged.image("agreement", "agreement.png")
    metrics["seconds_total"] = round(time.perf_counter() - t0, 2)

    run.add_metadata(words=word_counts(tags))
    run.add_markdown("examples", _examples_markdown(table))
    run.add_path("captions", out / "captions.parquet")
    run.log.info("tempo acc1 %s / acc2 %s over %s clips; key exact %s, MIREX %s over %s clips; %.1f s",
                 metrics["tempo_acc1"], metrics["tempo_acc2"], metrics["tempo_n_compared"], metrics["key_exact"],
                 metrics["key_mirex"], metrics["key_n_compared"], metrics["seconds_total"])
    return metrics


def _try_plot(table: pd.DataFrame, config: CaptionConfig, path: Path, run) -> bool:
    from components.captioning.plots import plot_agreement

    try:
        plot_agreement(table, path, tolerance=config.tempo_tolerance)
        return True
    except Exception as exc:  # a plot is a nicety: never fail the stage over it
        run.log.warning("agreement plot skipped: %s", exc)
        return False


def _examples_markdown(table: pd.DataFrame, n: int = 5) -> str:
    lines = ["| clip | captions |", "|---|---|"]
    for _, row in table.head(n).iterrows():
        text = "<br>".join(str(c).replace("|", "/") for c in row["captions"])
        lines.append(f"| {row['clip_id']} | {text} |")
    return "\n".join(lines)
