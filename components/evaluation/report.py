"""The independent evaluation of generated sets, as the stages report it.

    samples_evaluation(...)   lyra_samples: how well the tagger hears real clips (the bound on adherence), adherence
                              with and without text (paired, same seeds) and with shuffled prompts, and the
                              calibrated KAD / FAD table (floor: real train vs real test; ceiling: the codec round
                              trip; controls: noise, shuffled blocks), paired tag KL, Vendi diversity
    paired_systems(...)       RLAIF and best-of-n: a system against its base on the same prompts and seeds, KAD to
                              the real set (difference with its interval) and adherence (difference, p-values)
    table_rows(metrics)       the MusicGen-style row (KAD, FAD, KL, adherence, diversity) a registry report prints
"""

from __future__ import annotations

import numpy as np

from components.evaluation import adherence, controls
from components.evaluation.calibration import calibrated_table
from components.evaluation.distances import fad, kad, kad_difference, tag_kl, vendi
from components.evaluation.evaluator import Evaluator, Scores


def samples_evaluation(evaluator: Evaluator, *, sample_rate: int, real_test: list[np.ndarray],
                       test_instruments: list[str | None], real_train: list[np.ndarray], codec_test: list[np.ndarray],
                       text: list[np.ndarray], no_text: list[np.ndarray], prompt_test_index: list[int],
                       prompt_instruments: list[str | None], n_controls: int = 32, seed: int = 0) -> dict:
    """real_test[j] / codec_test[j]: the held-out clips raw and through the codec (cropped to the generation
    length); text[i] / no_text[i]: prompt i's generations with and without its text (same seed); prompt i came
    from real_test[prompt_test_index[i]]."""
    score = lambda clips: evaluator.score(clips, sample_rate)  # noqa: E731
    real, train, codec = score(real_test), score(real_train), score(codec_test)
    gen_text, gen_none = score(text), score(no_text)
    ctrl = real_test[:n_controls]
    noise, shuffled = score(controls.noise(ctrl, seed)), score(controls.shuffled(ctrl, sample_rate, seed=seed))

    paired_real = real.take(np.asarray(prompt_test_index))
    shuffled_instruments = adherence.shuffled_prompts(prompt_instruments, seed)
    table = calibrated_table(real.embeddings, floor=train.embeddings, ceiling=codec.embeddings,
                             systems={"with text": gen_text.embeddings, "without text": gen_none.embeddings},
                             controls={"white noise": noise.embeddings, "shuffled 0.25 s blocks": shuffled.embeddings},
                             seed=seed)
    return {
        "evaluator": evaluator.name,
        "tagger_hears_real_test": adherence.per_instrument_accuracy(real.tags, test_instruments),
        "tagger_hears_real_test_overall": adherence.summary(real.tags, test_instruments, seed),
        "tagger_hears_codec_test_overall": adherence.summary(codec.tags, test_instruments, seed),
        "adherence": {
            "real (prompt clips)": adherence.summary(paired_real.tags, prompt_instruments, seed),
            "with text": adherence.summary(gen_text.tags, prompt_instruments, seed),
            "without text": adherence.summary(gen_none.tags, prompt_instruments, seed),
            "with text, shuffled prompts": adherence.summary(gen_text.tags, shuffled_instruments, seed),
        },
        "adherence_text_vs_no_text": adherence.paired(gen_text.tags, gen_none.tags, prompt_instruments, seed),
        "kad_table": table,
        "tag_kl_to_prompt_clip": {"with text": tag_kl(paired_real.tags, gen_text.tags),
                                  "without text": tag_kl(paired_real.tags, gen_none.tags),
                                  "codec round trip": tag_kl(real.tags, codec.tags)},
        "vendi": {"real test": vendi(real.embeddings), "with text": vendi(gen_text.embeddings),
                  "without text": vendi(gen_none.embeddings)},
        "n": {"real_test": len(real), "real_train": len(train), "codec_test": len(codec), "prompts": len(gen_text),
              "controls": len(noise)},
    }


def paired_systems(base: Scores, system: Scores, reference: Scores, instruments: list[str | None] | None,
                   seed: int = 0) -> dict:
    """`system` against `base` on the same prompts and seeds: KAD to `reference` (difference system - base, with
    the interval of paired resamples), adherence (system - base) when the prompts' instruments are known."""
    diff, lo, hi = kad_difference(base.embeddings, system.embeddings, reference.embeddings, seed=seed)
    out = {"n": len(system), "n_reference": len(reference),
           "kad_base": kad(base.embeddings, reference.embeddings),
           "kad_system": kad(system.embeddings, reference.embeddings),
           "kad_difference": diff, "kad_difference_interval95": [lo, hi],
           "kad_worse": bool(lo > 0),  # the whole interval says the system moved away from real music
           "fad_base": fad(base.embeddings, reference.embeddings), "fad_system": fad(system.embeddings, reference.embeddings),
           "vendi_base": vendi(base.embeddings), "vendi_system": vendi(system.embeddings)}
    if instruments is not None:
        out["adherence"] = adherence.paired(system.tags, base.tags, instruments, seed)
        out["adherence_base"] = adherence.summary(base.tags, instruments, seed)
        out["adherence_system"] = adherence.summary(system.tags, instruments, seed)
    return out


def table_rows(evaluation: dict) -> dict[str, dict]:
    """{set: {kad, kad_interval, fad, kl, adherence, vendi}} from samples_evaluation's output."""
    rows = {}
    adh, kl, div = evaluation["adherence"], evaluation["tag_kl_to_prompt_clip"], evaluation["vendi"]
    for row in evaluation["kad_table"]["rows"]:
        name = row["name"]
        rows[f"{row['kind']}: {name}"] = {
            "n": row["n"], "kad": row["kad"], "kad_interval": row["kad_interval"], "fad": row["fad"],
            "kl": kl.get(name), "adherence": adh.get(name, {}).get("adherence"), "vendi": div.get(name)}
    return rows
