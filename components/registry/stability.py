"""`lyra stability STAGE`: would the stage's gate say the same on another machine?

Bit-identical weights across CPUs are not to be had (float kernels differ by instruction set), so a
verdict is trusted only if it survives perturbations that stand in for another machine: other
seeds of the stage, and another thread count (another reduction order). Each run is the stage's
own command from components/pipeline.py with its outputs redirected:

    --out/<stage>/seed<S>-threads<T>/out/            what the stage built
    --out/<stage>/seed<S>-threads<T>/metrics.json    what its gate reads
    --out/<stage>/summary.json                       per check: verdicts, failed rules, spread of its numbers

    runs = seeds x {threads[0]}  +  {seeds[0]} x threads[1:]     (5 seeds + 1 thread count = 6 runs)

Every blocking gate the stage declares (components/<package>/declaration.py) judges every run.
A run whose metrics.json exists is reused, so an interrupted sweep picks up where it stopped.

    lyra stability lyra_rlaif --seeds 0 1 2 3 4 --threads 1 2
    lyra stability lyra_rlaif --set eval_split=valid --set beta=0.4 --out runs/stability-valid
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def runs_of(seeds: list[int], threads: list[int]) -> list[tuple[int, int]]:
    return [(s, threads[0]) for s in seeds] + [(seeds[0], t) for t in threads[1:]]


def stage_command(stage, out: Path, metrics: Path, seed: int, threads: int, overrides: list[str]) -> list[str]:
    """The stage's command with its output folder and metrics file moved, the seed and threads set."""
    argv = list(stage.argv)
    if "--out" not in argv:
        raise SystemExit(f"stage {stage.name} has no --out argument to redirect")
    argv[argv.index("--out") + 1] = os.fspath(out)
    fields = stage.config_class().model_fields
    sets = ([f"seed={seed}"] if "seed" in fields else []) + ([f"threads={threads}"] if "threads" in fields else []) \
        + list(overrides)
    return [sys.executable, "-m", "components.cli", *argv, "--metrics", os.fspath(metrics),
            *[x for kv in sets for x in ("--set", kv)]]


def checks_of(stage_name: str) -> list[str]:
    """The blocking gates the stage declares (components/<package>/declaration.py)."""
    from components.pipeline import blocking_gates, stage_by_name

    return [gate.name for gate in blocking_gates(stage_by_name(stage_name))]


def judge(stage, metrics: dict, overrides: list[str], profile: str | None) -> dict[str, dict]:
    """{check: {"passed", "failed_rules", "numbers"}} for one run's metrics."""
    from components.config import load_stage_config
    from components.pipeline import blocking_gates, judge_gate

    cfg = load_stage_config(stage.params, stage.config_class(), profile=profile, overrides=overrides)
    out = {}
    for gate in blocking_gates(stage):
        verdict = judge_gate(stage, gate, metrics, cfg)
        out[gate.name] = {"passed": verdict.passed, "failed_rules": verdict.failed, "numbers": verdict.scalars}
    return out


def summarise(stage_name: str, runs: list[dict]) -> dict:
    """Per check: runs, how many passed, whether the verdict flipped, each number's min / mean / max."""
    summary = {}
    for check in checks_of(stage_name):
        verdicts = [r["checks"][check]["passed"] for r in runs]
        keys = sorted({k for r in runs for k in r["checks"][check]["numbers"]})
        spread = {}
        for key in keys:
            values = [r["checks"][check]["numbers"][key] for r in runs if key in r["checks"][check]["numbers"]]
            spread[key] = {"min": min(values), "mean": statistics.fmean(values), "max": max(values)}
        summary[check] = {"runs": len(runs), "passed": sum(verdicts), "flipped": len(set(verdicts)) > 1,
                          "failed_rules": sorted({x for r in runs for x in r["checks"][check]["failed_rules"]}),
                          "spread": spread}
    return summary


def run_sweep(stage_name: str, seeds: list[int], threads: list[int], out: Path, overrides: list[str],
              profile: str | None = None, jobs: int = 1) -> dict:
    from components.pipeline import stage_by_name

    stage = stage_by_name(stage_name)
    if not checks_of(stage_name):
        raise SystemExit(f"stage {stage_name} declares no blocking gate to judge (components/<package>/declaration.py)")
    if "seed" not in stage.config_class().model_fields:     # e.g. an evaluation: only the reduction order varies
        print(f"{stage_name} has no seed: runs differ by thread count only (seed its upstream stage instead)")
        seeds = seeds[:1]

    def folder_of(seed: int, n_threads: int) -> Path:
        return out / stage_name / f"seed{seed}-threads{n_threads}"

    def one(run: tuple[int, int]) -> dict:
        seed, n_threads = run
        folder = folder_of(seed, n_threads)
        metrics_file = folder / "metrics.json"
        if metrics_file.is_file():
            return json.loads((folder / "run.json").read_text())
        folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(n_threads), "MKL_NUM_THREADS": str(n_threads)}
        cmd = stage_command(stage, folder / "out", metrics_file, seed, n_threads, overrides)
        print(f"[{stage_name} seed {seed} threads {n_threads}] {' '.join(cmd[3:])}", flush=True)
        started = time.monotonic()
        with open(folder / "log.txt", "w") as log:
            code = subprocess.call(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        if code != 0 or not metrics_file.is_file():
            raise SystemExit(f"{stage_name} seed {seed} threads {n_threads} failed (exit {code}): {folder / 'log.txt'}")
        record = {"seed": seed, "threads": n_threads, "seconds": round(time.monotonic() - started, 1),
                  "overrides": overrides}
        (folder / "run.json").write_text(json.dumps(record, indent=1))
        return record

    from concurrent.futures import ThreadPoolExecutor

    plan = runs_of(seeds, threads)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:       # each run is its own process
        records = list(pool.map(one, plan))
    results = []
    for (seed, n_threads), record in zip(plan, records):
        metrics = json.loads((folder_of(seed, n_threads) / "metrics.json").read_text())
        record["checks"] = judge(stage, metrics, overrides, profile)
        results.append(record)
        for check, verdict in record["checks"].items():
            shown = ", ".join(f"{k} {v:.4g}" for k, v in verdict["numbers"].items())
            print(f"  seed {seed} threads {n_threads}: {check} {'passed' if verdict['passed'] else 'REFUSED'}"
                  f"{' (' + ', '.join(verdict['failed_rules']) + ')' if verdict['failed_rules'] else ''}; {shown}",
                  flush=True)
    summary = {"stage": stage_name, "overrides": overrides, "runs": results, "checks": summarise(stage_name, results)}
    (out / stage_name / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def table(summary: dict) -> str:
    """One markdown row per check: runs, verdicts, the spread of its numbers."""
    rows = ["| gate | runs | passed | flipped | failed rules | spread (min / mean / max) |", "|---|---|---|---|---|---|"]
    for check, s in summary["checks"].items():
        spread = "; ".join(f"{k} {v['min']:.3g} / {v['mean']:.3g} / {v['max']:.3g}" for k, v in s["spread"].items())
        rows.append(f"| {check} | {s['runs']} | {s['passed']} | {'yes' if s['flipped'] else 'no'} | "
                    f"{', '.join(s['failed_rules']) or '-'} | {spread} |")
    return "\n".join(rows)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.add_argument("stage", help="a stage with a registry check, e.g. lyra_rlaif, lyra_samples, oraql")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="stage seeds (--set seed=S)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="thread counts: the first for every seed, the others for the first seed")
    parser.add_argument("--out", type=Path, default=Path("runs/stability"), help="where runs and summary.json go")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every run (e.g. eval_split=valid while choosing settings)")
    parser.add_argument("--profile", default=None, help="params profile (default: params.yaml's)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at once (each is a process with its own thread count; 2 on 2 cores for 1-thread stages)")
    parser.set_defaults(func=main)


def main(args) -> int:
    if args.profile:
        os.environ["LYRA_PROFILE"] = args.profile
    summary = run_sweep(args.stage, args.seeds, args.threads, args.out, args.overrides, args.profile, args.jobs)
    print(table(summary))
    flipped = [c for c, s in summary["checks"].items() if s["flipped"]]
    print(f"flipped: {', '.join(flipped) or 'none'}")
    return 0
