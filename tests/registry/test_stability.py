"""`lyra stability`: the run design, the redirected command, and a flip is called a flip."""

from pathlib import Path

from components.pipeline import stage_by_name
from components.registry.stability import runs_of, stage_command, summarise


def test_five_seeds_then_the_other_thread_counts_on_the_first_seed():
    assert runs_of([0, 1, 2, 3, 4], [1, 2]) == [(0, 1), (1, 1), (2, 1), (3, 1), (4, 1), (0, 2)]


def test_the_stage_command_writes_elsewhere_with_its_seed_and_threads():
    cmd = stage_command(stage_by_name("lyra_samples"), Path("runs/x/out"), Path("runs/x/metrics.json"), 3, 2,
                        ["n_prompts=8"])
    assert cmd[cmd.index("--out") + 1] == "runs/x/out" and "data/samples/lyra" not in cmd
    assert cmd[cmd.index("--metrics") + 1] == "runs/x/metrics.json"
    sets = [cmd[i + 1] for i, x in enumerate(cmd) if x == "--set"]
    assert sets == ["seed=3", "threads=2", "n_prompts=8"]
    # an evaluation without a seed field is varied by threads only (it would reject --set seed=)
    eval_cmd = stage_command(stage_by_name("omnicodec_eval"), Path("o"), Path("m.json"), 3, 2, [])
    assert not any(x.startswith("seed=") for x in eval_cmd)


def run(passed: bool, gain: float) -> dict:
    return {"seed": 0, "threads": 1, "checks": {"rlaif_gate": {
        "passed": passed, "failed_rules": [] if passed else ["judge_not_worse"], "numbers": {"reward_gain": gain}}}}


def test_a_verdict_that_differs_between_runs_is_a_flip_with_its_spread():
    steady = summarise("lyra_rlaif", [run(True, 0.004), run(True, 0.006)])["rlaif_gate"]
    assert steady["passed"] == 2 and not steady["flipped"] and steady["failed_rules"] == []
    flipped = summarise("lyra_rlaif", [run(True, 0.004), run(False, 0.001), run(True, 0.007)])["rlaif_gate"]
    assert flipped["flipped"] and flipped["passed"] == 2 and flipped["failed_rules"] == ["judge_not_worse"]
    assert flipped["spread"]["reward_gain"] == {"min": 0.001, "mean": 0.004, "max": 0.007}
