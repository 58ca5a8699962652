"""The blocking checks a promotion requires: the blocking gates the stages declare, judged on the files
the stages wrote.

A model's required checks are the blocking gates of its stage and of its evaluation stages (params.yaml
`registry.models`), so no version can be promoted without the gates its stages declare. The rules
are the ones the Dagster asset checks apply (both read the declarations through
components/pipeline.py), with the same stage config, so a version is judged alike whether it was
registered from a Dagster run or by hand. The result is stored in the version's entry: a later
promotion reads the verdict recorded for that version rather than whatever files lie in data/ by then.
"""

from __future__ import annotations

from pathlib import Path

from components.pipeline import blocking_gates, gate_input, gates_by_name, judge_gate, stage_by_name, stage_config


def required_checks(stage: str, evaluations: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The blocking gates declared on a model's stage and its evaluation stages."""
    return tuple(gate.name for name in (stage, *evaluations) for gate in blocking_gates(stage_by_name(name)))


def _gate(name: str):
    known = gates_by_name()
    if name not in known or not known[name][1].blocking:
        blocking = ", ".join(n for n, (_, g) in known.items() if g.blocking)
        raise KeyError(f"no blocking gate named {name!r} (declared: {blocking}); a gate is declared with its stage "
                       "in components/<package>/declaration.py")
    return known[name]


def evaluate(names: tuple[str, ...], repo: Path, profile: str | None) -> dict[str, dict]:
    """{check: {"passed": bool, "rules": {rule: bool}, "numbers": {metric: value}}} for the named gates.
    The codec's no-regression rule is the registry's own comparison against a stage's holder."""
    out = {}
    for name in names:
        stage, gate = _gate(name)
        verdict = judge_gate(stage, gate, gate_input(stage, gate, repo), stage_config(stage, repo, profile))
        out[name] = {"passed": verdict.passed, "rules": verdict.rules, "numbers": verdict.scalars,
                     **({"not_measurable": verdict.not_measurable} if verdict.not_measurable else {})}
    return out
