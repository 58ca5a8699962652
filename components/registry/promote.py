"""Promotion: a version moves to a stage only through named gates, and every decision is recorded.

    candidate --(stage_order, blocking checks, no_regression vs staging's holder)--> staging
    staging   --(stage_order, blocking checks, no_regression vs production's holder)--> production

    stage_order    production takes versions that were in staging (staging takes any registered one)
    <check name>   each blocking check recorded with the version (e.g. codec_gate) passed
    no_regression  on the same held-out data as the stage's current holder, every `compare` metric is
                   no worse than the holder's by more than its tolerance
    listeners_prefer  (where a model's `listeners_prefer` names the stage) listeners chose the candidate over
                   the holder in blind pairs, the interval's lower bound above 0.5 (components/serving)

A refusal names the failing gates and their numbers. `force` promotes anyway, but only with an actor
and a reason, and the failed gates are recorded with it. Every decision (refusals too) is appended
to registry/audit.jsonl and committed; promotions are also GTO tags whose message is the decision.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from components.registry import gitrecord
from components.registry.config import STAGES
from components.registry.registry import Registry, RegistryError, now


@dataclass
class Gate:
    name: str
    passed: bool
    detail: str
    numbers: dict = field(default_factory=dict)


@dataclass
class Decision:
    model: str
    version: str
    to_stage: str
    outcome: str                 # promoted | refused | forced | held (the version already held the stage)
    actor: str
    reason: str
    gates: list[Gate]
    previous_holder: str | None
    at: str
    tag: str | None = None

    @property
    def failed(self) -> list[Gate]:
        return [g for g in self.gates if not g.passed]

    def summary(self) -> str:
        head = f"{self.model} {self.version} -> {self.to_stage}: {self.outcome.upper()}"
        lines = [head] + [f"  gate {g.name}: {'passed' if g.passed else 'FAILED'} - {g.detail}" for g in self.gates]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"event": "promotion", **asdict(self)}


def stage_order_gate(registry: Registry, name: str, version: str, to_stage: str) -> Gate:
    previous = STAGES[STAGES.index(to_stage) - 1]
    held = registry.stages_of(name, version)
    ok = previous == "candidate" or previous in held
    return Gate("stage_order", ok, f"{to_stage} takes versions that were in {previous}; {version} was in "
                                   f"{', '.join(held) or 'no stage'}", {"required": previous, "held": held})


def check_gates(entry: dict) -> list[Gate]:
    gates = []
    for check, result in entry.get("checks", {}).items():
        failed = [rule for rule, ok in result["rules"].items() if not ok]
        numbers = result.get("numbers", {})
        shown = ", ".join(f"{k} {v:.4g}" for k, v in numbers.items())
        detail = ("rules passed: " + (", ".join(result["rules"]) or "none configured")) if not failed \
            else "rules failed: " + ", ".join(failed) + (f" ({shown})" if shown else "")
        gates.append(Gate(check, result["passed"], detail, {"rules": result["rules"], **numbers}))
    return gates


def no_regression_gate(registry: Registry, entry: dict, holder: dict | None) -> Gate:
    name = entry["model"]
    if holder is None:
        return Gate("no_regression", True, "no current holder to compare with")
    if holder["version"] == entry["version"]:
        return Gate("no_regression", True, f"{entry['version']} already holds the stage")
    if holder["held_out"]["digest"] != entry["held_out"]["digest"]:
        differs = [p for p, d in entry["held_out"]["data"].items() if holder["held_out"]["data"].get(p) != d]
        return Gate("no_regression", False, f"not comparable with holder {holder['version']}: held-out data differ "
                    f"({', '.join(differs) or 'data set'}); evaluate both on one set, or --force with a reason",
                    {"holder": holder["version"], "held_out_differs": differs})
    numbers, worse = {"holder": holder["version"]}, []
    for key, rule in registry.spec(name).compare.items():
        stage, _, metric = key.partition(".")
        cand = entry["metrics"].get(stage, {}).get(metric)
        held = holder["metrics"].get(stage, {}).get(metric)
        if cand is not None and held is None:
            # the holder was registered before this metric was measured: nothing to compare it with (recorded)
            numbers[key] = {"candidate": cand, "holder": None, "note": "the holder predates this metric"}
            continue
        if cand is None or held is None:
            worse.append(f"{key} not measured ({'candidate' if cand is None else 'holder'})")
            continue
        delta = cand - held if rule.higher_is_better else held - cand     # > 0: the candidate is better
        numbers[key] = {"candidate": cand, "holder": held, "tolerance": rule.tolerance,
                        "higher_is_better": rule.higher_is_better}
        if delta < -rule.tolerance:
            worse.append(f"{key} {cand:.4g} vs holder {held:.4g} ({'higher' if rule.higher_is_better else 'lower'} "
                         f"is better, tolerance {rule.tolerance:g})")
    if worse:
        return Gate("no_regression", False, f"regressed against {holder['version']}: " + "; ".join(worse), numbers)
    compared = ", ".join(f"{k} {v['candidate']:.4g} vs " + (f"{v['holder']:.4g}" if v["holder"] is not None else
                                                            "none (the holder predates it)")
                         for k, v in numbers.items() if k != "holder")
    return Gate("no_regression", True, f"against {holder['version']}: {compared or 'no metric configured'}", numbers)


def listeners_prefer_gate(registry: Registry, entry: dict, holder: dict | None, rule) -> Gate:
    """Blind A/B judgements from the listening room (`lyra serve --candidate`): the candidate preferred over
    the holder, with the interval above 0.5, over at least `min_judgements` judgements by `min_listeners`."""
    from components.listening.config import load_listening_config
    from components.listening.statistics import preference
    from components.listening.votes import VoteStore

    name = entry["model"]
    if holder is None:
        return Gate("listeners_prefer", True, "no current holder to be preferred over")
    if holder["version"] == entry["version"]:
        return Gate("listeners_prefer", True, f"{entry['version']} already holds the stage")
    store = VoteStore.open(load_listening_config(registry.repo, registry.profile).database, registry.repo)
    pref = preference(store.judgements(), f"{name}@{entry['version']}", f"{name}@{holder['version']}", rule.confidence)
    numbers = {**pref.to_json(), "min_judgements": rule.min_judgements, "min_listeners": rule.min_listeners}
    if pref.n < rule.min_judgements or pref.listeners < rule.min_listeners:
        return Gate("listeners_prefer", False, f"{pref.n} judgements by {pref.listeners} listeners against "
                    f"{holder['version']}; needs {rule.min_judgements} by {rule.min_listeners} "
                    f"(lyra serve --candidate {name}@{entry['version']})", numbers)
    said = (f"{pref.wins} of {pref.n} judgements ({pref.listeners} listeners) preferred {entry['version']} over "
            f"{holder['version']} ({pref.share:.2f}; one-sided {rule.confidence:.0%} lower bound {pref.lower:.3f}, "
            f"p = {pref.p_value:.3g})")
    return Gate("listeners_prefer", pref.lower > 0.5, said if pref.lower > 0.5 else f"not preferred: {said}", numbers)


def promote(registry: Registry, name: str, version: str, to_stage: str, reason: str, *,
            force: bool = False, actor: str | None = None) -> Decision:
    if to_stage not in STAGES[1:]:
        raise RegistryError(f"--to must be one of {', '.join(STAGES[1:])} (versions enter candidate when registered)")
    if not (reason or "").strip():
        raise RegistryError("a promotion needs a --reason")
    if force and not (actor or "").strip():
        raise RegistryError("a forced promotion needs an --actor (who overrides the gates) and a --reason")
    actor = actor or gitrecord.default_actor(registry.repo)
    with registry.locked():           # creates the registry repository on first use
        entry = registry.entry(name, version)
        version = entry["version"]
        holder_version = registry.holder(name, to_stage)
        if holder_version == version:
            # e.g. two promotions of one version at once: the registry's lock queued this one behind the other
            decision = Decision(name, version, to_stage, "held", actor, reason.strip(), [], holder_version, now())
            registry.append_audit(decision.to_json())
            gitrecord.commit_paths(registry.git, [registry.config.records],
                                   f"registry: {name} {version} already holds {to_stage} ({actor})", actor)
            return decision
        holder = registry.entry(name, holder_version) if holder_version else None
        gates = [stage_order_gate(registry, name, version, to_stage), *check_gates(entry),
                 no_regression_gate(registry, entry, holder)]
        listeners = registry.spec(name).listeners_prefer.get(to_stage)
        if listeners is not None:
            gates.append(listeners_prefer_gate(registry, entry, holder, listeners))
        passed = all(g.passed for g in gates)
        outcome = "promoted" if passed else "forced" if force else "refused"
        decision = Decision(name, version, to_stage, outcome, actor, reason.strip(), gates, holder_version, now())
        if outcome != "refused":
            message = json.dumps({"decision": outcome, "actor": actor, "reason": decision.reason,
                                  "failed_gates": [g.name for g in decision.failed]})
            decision.tag = gitrecord.assign_stage(registry.git, name, version, to_stage, message, actor)
        registry.append_audit(decision.to_json())
        gitrecord.commit_paths(registry.git, [registry.config.records],
                               f"registry: {name} {version} -> {to_stage} {outcome} ({actor}: {decision.reason})", actor)
    return decision


@dataclass
class Outcome:
    """What `promote_accepted` did with one model: promoted, already held, or why it was left alone."""
    model: str
    version: str | None
    outcome: str                 # promoted | held | refused | unregistered
    detail: str


def promote_accepted(registry: Registry, reason: str, actor: str, models: list[str] | None = None) -> list[Outcome]:
    """Promote each model's current version (the weights its folder holds now) through staging to production,
    through the same gates as `lyra promote`. A version whose recorded checks failed is left a candidate
    (not tried: it would be refused); a refusal by another gate is reported, not raised. `lyra demo` ends
    with this, so a new user's checkout can call `lyra@production`."""
    from components.registry.store import ArtifactError

    outcomes = []
    for name in models or list(registry.config.models):
        try:
            entry = registry.find_by_digest(name, registry.current_digest(name))
        except (ArtifactError, RegistryError, OSError) as exc:
            outcomes.append(Outcome(name, None, "unregistered", f"no model folder to promote ({exc})"))
            continue
        if entry is None:
            outcomes.append(Outcome(name, None, "unregistered", "its current weights are not registered"))
            continue
        version = entry["version"]
        refused = [f"{g.name}: {g.detail}" for g in check_gates(entry) if not g.passed]
        if refused:
            outcomes.append(Outcome(name, version, "refused", f"stays a candidate: refused by {'; '.join(refused)}"))
            continue
        if registry.holder(name, "production") == version:
            outcomes.append(Outcome(name, version, "held", "already in production"))
            continue
        been_in = registry.stages_of(name, version)
        for stage in STAGES[1:]:
            if stage in been_in:
                continue
            decision = promote(registry, name, version, stage, reason, actor=actor)
            if decision.outcome == "refused":
                gates = "; ".join(f"{g.name}: {g.detail}" for g in decision.failed)
                outcomes.append(Outcome(name, version, "refused", f"{stage} refused it: {gates}"))
                break
        else:
            outcomes.append(Outcome(name, version, "promoted", "staging -> production"))
    return outcomes
