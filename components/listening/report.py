"""The listening room's report page (GET /report): what listeners said, as tables with intervals.

    preference   the candidate vs the served version: wins / n, one-sided exact lower bound, p-value
    best-of-n    P(liked) per version and n with Wilson intervals, win rate against other n, and the
                 ratio to best-of-1 (the write-up's "doubles the likelihood of being liked") with its interval
"""

from __future__ import annotations

import html

from components.listening.statistics import liked_by_best_of, liked_ratio, preference

STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60rem;color:#1d2330}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border-bottom:1px solid #d5dae3;padding:.3em .7em;text-align:left}
.hint{color:#5b6475}"""


def _num(x, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _interval(pair) -> str:
    lo, hi = pair
    return "–" if lo is None else f"{lo:.2f} – {hi:.2f}"


def render(judgements: list[dict], served: dict[str, str]) -> str:
    arms = liked_by_best_of(judgements)
    rows = "".join(
        f"<tr><td>{html.escape(a['version'])}</td><td>{a['best_of']}</td><td>{a['rated']}</td><td>{_num(a['p_liked'])}</td>"
        f"<td>{_interval(a['p_liked_ci95'])}</td><td>{a['pairs_played']}</td><td>{_num(a['win_rate'])}</td>"
        f"<td>{_interval(a['win_rate_ci95'])}</td></tr>" for a in arms)
    ratios = "".join(
        f"<tr><td>{html.escape(r['version'])}</td><td>{r['best_of']}</td><td>{_num(r['ratio'])}</td>"
        f"<td>{_interval(r['ci95'])}</td><td>{r['n'][0]} / {r['n'][1]}</td></tr>" for r in liked_ratio(arms))
    pref = ""
    if "candidate" in served:
        p = preference(judgements, served["candidate"], served["model"])
        pref = (f"<h2>Candidate vs served version</h2><p>{html.escape(p.candidate)} chosen over {html.escape(p.holder)} "
                f"in {p.wins} of {p.n} blind pairs (share {_num(p.share)}; one-sided {p.confidence:.0%} lower bound "
                f"{_num(p.lower, 3)}; p = {_num(p.p_value, 4)} against 0.5).</p>")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Listening report</title>
<style>{STYLE}</style></head><body><h1>Listening report</h1>
<p class="hint">{len(judgements)} judgement(s) of blind pairs. Liked = a rating of 4 or 5 of 5; intervals are 95 %
(Wilson for shares, Katz for ratios). A version's rows count only its own pieces.</p>{pref}
<h2>Best-of-n: is the picked piece liked more?</h2>
<table><tr><th>version</th><th>best of</th><th>rated</th><th>P(liked)</th><th>interval</th><th>pairs vs other n</th>
<th>win rate</th><th>interval</th></tr>{rows}</table>
<h2>P(liked | best-of-n) / P(liked | best-of-1)</h2>
<table><tr><th>version</th><th>n</th><th>ratio</th><th>interval</th><th>rated (1 / n)</th></tr>{ratios}</table>
</body></html>"""
