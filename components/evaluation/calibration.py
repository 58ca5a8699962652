"""Every distance with a scale measured on the same run: a figure like "KAD 4.1" means nothing until it stands
beside what real music scores against real music (the floor), what the codec's own round trip scores (the
ceiling a generator that speaks through the codec cannot beat) and what a control the evaluator must reject
scores (noise, shuffled audio).

    calibrated_table(reference, floor=..., ceiling=..., systems={...}, controls={...})
        reference   embeddings of the held-out real clips every row is compared with (test split)
        floor       embeddings of other real clips (train split): the distance of real music to real music
        ceiling     embeddings of the reference clips after the codec's round trip
        systems     generated sets (pretrained Lyra, best-of-n picks, RLAIF, ...)
        controls    sets the evaluator must put far away (noise, shuffled frames)
    -> rows: KAD with its bootstrap interval, FAD, n; for systems also where they lie between the floor (0) and
       the farthest control (1), and KAD over the ceiling's
    markdown(table)  the table as the registry's report shows it
"""

from __future__ import annotations

import numpy as np

from components.evaluation.distances import fad, kad, kad_interval


def _row(kind: str, name: str, embeddings: np.ndarray, reference: np.ndarray, n_resamples: int, seed: int) -> dict:
    lo, hi = kad_interval(embeddings, reference, n_resamples=n_resamples, seed=seed)
    return {"kind": kind, "name": name, "n": int(len(embeddings)), "kad": kad(embeddings, reference),
            "kad_interval": [lo, hi], "fad": fad(embeddings, reference)}


def calibrated_table(reference: np.ndarray, *, floor: np.ndarray, ceiling: np.ndarray | None = None,
                     systems: dict[str, np.ndarray] | None = None, controls: dict[str, np.ndarray] | None = None,
                     n_resamples: int = 200, seed: int = 0) -> dict:
    """The rows (floor, ceiling, systems, controls) against `reference`, and the scale they define."""
    rows = [_row("floor", "real (other clips)", floor, reference, n_resamples, seed)]
    if ceiling is not None:
        rows.append(_row("ceiling", "codec round trip", ceiling, reference, n_resamples, seed))
    for name, emb in (controls or {}).items():
        rows.append(_row("control", name, emb, reference, n_resamples, seed))
    floor_kad = rows[0]["kad"]
    far = max((r["kad"] for r in rows if r["kind"] == "control"), default=None)
    ceiling_kad = rows[1]["kad"] if ceiling is not None else None
    for name, emb in (systems or {}).items():
        row = _row("system", name, emb, reference, n_resamples, seed)
        if far is not None and far > floor_kad:
            row["position"] = (row["kad"] - floor_kad) / (far - floor_kad)   # 0 = real music, 1 = the control
        if ceiling_kad is not None and ceiling_kad > 0:
            row["kad_over_ceiling"] = row["kad"] / ceiling_kad
        rows.append(row)
    controls_rejected = all(r["kad_interval"][0] > rows[0]["kad_interval"][1] for r in rows if r["kind"] == "control")
    return {"rows": rows, "floor_kad": floor_kad, "ceiling_kad": ceiling_kad, "control_kad": far,
            # the evaluator tells every control from real music (its interval above the floor's): else its scale is void
            "controls_rejected": bool(controls_rejected)}


def markdown(table: dict) -> str:
    lines = ["| set | n | KAD (95 % interval) | FAD | position (0 = real, 1 = control) |", "|---|---|---|---|---|"]
    for r in table["rows"]:
        lo, hi = r["kad_interval"]
        position = f"{r['position']:.2f}" if "position" in r else ""
        lines.append(f"| {r['kind']}: {r['name']} | {r['n']} | {r['kad']:.2f} ({lo:.2f} .. {hi:.2f}) | {r['fad']:.2f} | "
                     f"{position} |")
    return "\n".join(lines)
