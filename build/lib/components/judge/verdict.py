"""The judge's verdict on generations: does the prompted instrument / style come out?

For n prompts taken from held-out clips, three sets of music are judged by the same judge:

    real       the prompt's own clip, decoded by the codec        how well the judge can do at all
    with text  Lyra's generation from the prompt                   what conditioning delivers
    no text    the same seed, the text dropped (the null prefix)   the control: what comes out anyway

and, per head,
    accuracy_*            share of pieces the judge assigns the prompt's class (n and a 95 % interval)
    share_of_real         accuracy_text / accuracy_real            (target >= 0.7)
    p_text_vs_no_text     exact one-sided McNemar on the paired outcomes (same prompt, same seed)
    p_text_vs_chance      one-sided binomial against the prompts' majority-class rate
"""

from __future__ import annotations

import numpy as np

from components.common.stats import binomial_p_greater, paired_p_greater, wilson_interval


def head_verdict(truth: np.ndarray, real: np.ndarray, text: np.ndarray, no_text: np.ndarray) -> dict:
    """Class indices [n] for the prompts' truth and the judge's answers on each set."""
    hits = {name: np.asarray(pred) == truth for name, pred in (("real", real), ("text", text), ("no_text", no_text))}
    n = len(truth)
    chance = float(np.bincount(truth).max() / n) if n else float("nan")
    out: dict = {"n": n, "chance_majority": chance}
    for name, hit in hits.items():
        out[f"accuracy_{name}"] = float(hit.mean()) if n else float("nan")
        out[f"interval95_{name}"] = list(wilson_interval(int(hit.sum()), n))
    out["share_of_real"] = out["accuracy_text"] / out["accuracy_real"] if out["accuracy_real"] > 0 else float("nan")
    out["p_text_vs_no_text"] = paired_p_greater(hits["text"], hits["no_text"])
    out["p_text_vs_chance"] = binomial_p_greater(int(hits["text"].sum()), n, chance)
    return out

