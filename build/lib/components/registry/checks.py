"""The blocking checks a promotion requires, evaluated from the files the stages wrote.

The same rule functions as the Dagster asset checks (orchestration/defs/asset_checks.py), with the
same stage config, so a version is judged alike whether it was registered from a Dagster run or by
hand. The result is stored in the version's entry: a later promotion reads the verdict recorded
for that version rather than whatever files lie in data/ by then.

    name -> evaluate(repo, profile) -> {rule: passed}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

Rules = dict[str, bool]


def _metrics(repo: Path, stage: str) -> dict:
    from components.pipeline import stage_by_name

    path = repo / stage_by_name(stage).metrics_path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics for stage {stage}; run it first")
    return json.loads(path.read_text())


def _config(repo: Path, stage: str, profile: str | None):
    from components.config import load_stage_config
    from components.pipeline import stage_by_name

    s = stage_by_name(stage)
    return load_stage_config(s.params, s.config_class(), params_path=repo / "params.yaml", profile=profile)


def _codec_rules(metrics: dict, cfg) -> Rules:
    from components.omnicodec.gates import codec_gate_decisions

    # the previous-version rule is the registry's no-regression gate (against the stage's holder)
    return codec_gate_decisions(metrics, None, cfg.gate_min_information_gap)


def _pretrain_rules(metrics: dict, cfg) -> Rules:
    from components.lyra.gates import pretrain_gate_decisions

    return pretrain_gate_decisions(metrics, cfg.gate_max_loss_vs_unigram)


def _samples_rules(metrics: dict, cfg) -> Rules:
    from components.lyra.gates import samples_gate_decisions

    return samples_gate_decisions(metrics, cfg.gate_head, cfg.gate_alpha)


def _oraql_rules(metrics: dict, cfg) -> Rules:
    from components.oraql.evaluate import gate_decisions

    return gate_decisions(metrics, cfg)


def _rlaif_rules(metrics: dict, cfg) -> Rules:
    from components.rlaif.gates import rlaif_gate_decisions

    return rlaif_gate_decisions(metrics, cfg.gate_min_gain, cfg.gate_max_diversity_loss, cfg.gate_max_more_silent,
                                cfg.gate_judge_p)


def _influence_rules(metrics: dict, cfg) -> Rules:
    from components.influence.gates import influence_gate_decisions

    return influence_gate_decisions(metrics, cfg.gate_min_influence, cfg.gate_min_two_choice, cfg.gate_max_flagged,
                                    cfg.gate_min_spliced_flagged)


# check -> (the stage whose metrics file and config it reads, rules(metrics, config))
RULES: dict[str, tuple[str, Callable[[dict, object], Rules]]] = {
    "codec_gate": ("omnicodec_eval", _codec_rules),
    "lyra_beats_unigram": ("lyra_pretrain", _pretrain_rules),
    "judge_hears_the_prompt": ("lyra_samples", _samples_rules),
    "oraql_gate": ("oraql", _oraql_rules),
    "rlaif_gate": ("lyra_rlaif", _rlaif_rules),
    "influence_gate": ("lyra_influence", _influence_rules),
}


def rules_from_metrics(name: str, metrics: dict, cfg) -> Rules:
    """The check's rules on a metrics dict (a stage's metrics file, wherever it was written)."""
    return {k: bool(v) for k, v in RULES[name][1](metrics, cfg).items()}


def _evaluator(name: str) -> Callable[[Path, str | None], Rules]:
    stage = RULES[name][0]
    return lambda repo, profile: rules_from_metrics(name, _metrics(repo, stage), _config(repo, stage, profile))


BLOCKING_CHECKS: dict[str, Callable[[Path, str | None], Rules]] = {name: _evaluator(name) for name in RULES}


# the numbers each check's rules read, shown with its verdict (from the metrics file of its RULES stage;
# "a.b" = nested)
CHECK_NUMBERS: dict[str, tuple[str, ...]] = {
    "codec_gate": ("mel_distance", "untrained.mel_distance", "visqol", "untrained.visqol", "code_information_mel_gap"),
    "lyra_beats_unigram": ("val_loss", "unigram_val_loss", "val_vs_unigram"),
    "judge_hears_the_prompt": ("judge_instrument_accuracy_text", "judge_instrument_accuracy_no_text",
                               "judge_instrument_p_text_vs_no_text"),
    "oraql_gate": ("spearman_clip", "untrained_spearman_clip", "pairwise_accuracy", "held_out_spearman",
                   "untrained_held_out_spearman"),
    "rlaif_gate": ("reward_gain", "kl_nats_per_code", "max_kl_per_code", "diversity_pretrained",
                   "diversity_post_trained", "silent_fraction_post_trained", "judge_instrument_accuracy_pretrained",
                   "judge_instrument_accuracy_post_trained", "judge_p_post_worse"),
    "influence_gate": ("influence_gain_over_no_reference", "two_choice", "flagged_generated", "flagged_spliced"),
}


def numbers_from_metrics(name: str, metrics: dict) -> dict:
    """The check's numbers (CHECK_NUMBERS) found in a metrics dict."""
    out = {}
    for key in CHECK_NUMBERS.get(name, ()):
        node = metrics
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, (int, float)) and not isinstance(node, bool):
            out[key] = node
    return out


def _numbers(repo: Path, name: str) -> dict:
    try:
        return numbers_from_metrics(name, _metrics(repo, RULES[name][0])) if name in CHECK_NUMBERS else {}
    except FileNotFoundError:
        return {}


def evaluate(names: tuple[str, ...], repo: Path, profile: str | None) -> dict[str, dict]:
    """{check: {"passed": bool, "rules": {rule: bool}, "numbers": {metric: value}}} for the named checks."""
    out = {}
    for name in names:
        if name not in BLOCKING_CHECKS:
            raise KeyError(f"no evaluator for check {name!r} (known: {', '.join(BLOCKING_CHECKS)}); "
                           "add one to components/registry/checks.py")
        rules = {k: bool(v) for k, v in BLOCKING_CHECKS[name](repo, profile).items()}
        out[name] = {"passed": all(rules.values()), "rules": rules, "numbers": _numbers(repo, name)}
    return out
