"""How often the audio estimates agree with the metadata: tempo, key, metre.

Tempo follows MIREX's audio tempo task: `acc1` counts an estimate within ±tol (8 %) of the
reference; `acc2` also accepts the reference times 1/2, 2 (and 1/3, 3: triple metres) — the
"octave errors" every beat tracker makes by locking onto half or double the pulse.

Key follows MIREX's key task (as in mir_eval.key.weighted_score): exact 1.0, the estimate a
perfect fifth above 0.5, relative major/minor 0.3, parallel major/minor 0.2, else 0.

Clips without the metadata value are left out of that comparison (and counted as such).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Iterable, Mapping, Sequence

from components.captioning.keys import MIREX_WEIGHTS, key_relation, parse_key


def tempo_within(estimate: float, reference: float, tolerance: float) -> bool:
    return abs(estimate - reference) <= tolerance * reference


def tempo_agreement(estimate: float, reference: float, tolerance: float = 0.08,
                    metrical_factors: Sequence[float] = (2.0, 3.0)) -> tuple[bool, bool]:
    """(strict, octave-tolerant) agreement of one tempo estimate with its reference.

    Tolerant also accepts the reference multiplied or divided by each metrical factor.
    """
    strict = tempo_within(estimate, reference, tolerance)
    tolerant = strict or any(tempo_within(estimate, reference * f, tolerance) or
                             tempo_within(estimate, reference / f, tolerance) for f in metrical_factors)
    return strict, tolerant


def metre_class(meter: object) -> str | None:
    """"3/4" -> "triple", "6/8" -> "duple" (two dotted beats), "4/4" -> "duple"; audio guesses pass through."""
    if not isinstance(meter, str) or not meter:
        return None
    if meter in ("duple", "triple"):
        return meter
    top, _, bottom = meter.partition("/")
    if not top.isdigit():
        return None
    beats = int(top)
    if bottom == "8" and beats in (6, 9, 12):      # compound metres count dotted beats
        beats //= 3
    if beats % 3 == 0:
        return "triple"
    return "duple" if beats % 2 == 0 else None     # 5/4, 7/8: neither


def _rate(hits: int, n: int) -> float | None:
    return round(hits / n, 4) if n else None


def summarise(rows: Iterable[Mapping], *, tolerance: float = 0.08,
              metrical_factors: Sequence[float] = (2.0, 3.0)) -> dict:
    """Agreement over clips. Each row needs: tempo_bpm_audio, tempo_bpm (metadata), key_audio,
    mode_audio, key, mode (metadata), meter_audio, meter (metadata); missing values are allowed.
    """
    n_tempo = tempo_strict = tempo_tolerant = 0
    ratios: list[float] = []
    n_key = 0
    relations: Counter = Counter()
    mode_hits = 0
    n_metre = metre_hits = 0
    n_rows = 0
    for row in rows:
        n_rows += 1
        est, ref = _num(row.get("tempo_bpm_audio")), _num(row.get("tempo_bpm"))
        if est is not None and ref is not None:
            strict, tolerant = tempo_agreement(est, ref, tolerance, metrical_factors)
            n_tempo += 1
            tempo_strict += strict
            tempo_tolerant += tolerant
            ratios.append(est / ref)
        ref_key = parse_key(row.get("key"), row.get("mode"))
        est_key = parse_key(row.get("key_audio"), row.get("mode_audio"))
        if ref_key is not None and est_key is not None:
            n_key += 1
            relations[key_relation(est_key, ref_key)] += 1
            mode_hits += est_key.mode == ref_key.mode
        ref_m, est_m = metre_class(row.get("meter")), metre_class(row.get("meter_audio"))
        if ref_m is not None and est_m is not None:
            n_metre += 1
            metre_hits += ref_m == est_m
    mirex = sum(MIREX_WEIGHTS[r] * c for r, c in relations.items())
    return {
        "n_clips": n_rows,
        "tempo": {
            "n_compared": n_tempo, "tolerance": tolerance, "metrical_factors": list(metrical_factors),
            "acc1_strict": _rate(tempo_strict, n_tempo), "acc2_octave_tolerant": _rate(tempo_tolerant, n_tempo),
            "median_ratio": round(sorted(ratios)[len(ratios) // 2], 4) if ratios else None,
        },
        "key": {
            "n_compared": n_key, "exact": _rate(relations["exact"], n_key),
            "related": _rate(n_key - relations["other"], n_key),    # exact, fifth, relative or parallel
            "mirex_weighted": round(mirex / n_key, 4) if n_key else None,
            "mode": _rate(mode_hits, n_key),
            "relations": {r: relations[r] for r in MIREX_WEIGHTS},
        },
        "metre": {"n_compared": n_metre, "duple_triple": _rate(metre_hits, n_metre)},
    }


def flat_metrics(summary: Mapping) -> dict:
    """The headline numbers, flat, for the metrics file / Dagster metadata."""
    t, k, m = summary["tempo"], summary["key"], summary["metre"]
    flat = {
        "tempo_n_compared": t["n_compared"], "tempo_acc1": t["acc1_strict"], "tempo_acc2": t["acc2_octave_tolerant"],
        "key_n_compared": k["n_compared"], "key_exact": k["exact"], "key_related": k["related"],
        "key_mirex": k["mirex_weighted"], "key_mode": k["mode"],
        "metre_n_compared": m["n_compared"], "metre_agreement": m["duple_triple"],
    }
    # the estimators can only be checked against what the metadata says (a library rarely tags key or metre)
    unmeasured = {f"{name}_agreement": f"no clip's metadata has a {name} to compare the audio estimate with"
                  for name, part in (("tempo", t), ("key", k), ("metre", m)) if not part["n_compared"]}
    return {**flat, **({"not_measurable": unmeasured} if unmeasured else {})}


def _num(value) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f > 0 else None

