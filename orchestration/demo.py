"""`lyra demo` and `lyra ui`: the lifecycle through Dagster with the embedded defaults.

The Dagster instance lives in `.dagster/` (SQLite, no servers), so runs started here show up
in `lyra ui` afterwards; DVC records every stage in dvc.lock and pushes to the local remote.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _prepare_environment(profile: str | None) -> None:
    os.environ.setdefault("DAGSTER_HOME", str(REPO_ROOT / ".dagster"))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    # one thread per stage process unless a stage sets its own (as `make demo` does): stages run two at a time
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if profile:
        os.environ["LYRA_PROFILE"] = profile
    os.chdir(REPO_ROOT)


def configure_demo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default=None, help="params profile (default: params.yaml's `profile`, i.e. tiny)")
    parser.add_argument("--job", default="lifecycle", choices=("lifecycle", "scaling"),
                        help="lifecycle: every stage; scaling: the scaling-law sweep (needs the token shards)")
    parser.add_argument("--select", default="*", help="Dagster asset selection, e.g. 'curated_clips+' or 'omnicodec*' "
                        "(only the job's own assets run)")
    parser.add_argument("--force", action="store_true", help="re-run stages even when DVC reports them unchanged")
    parser.add_argument("--no-push", action="store_true", help="do not push data to the DVC remote afterwards")
    parser.add_argument("--corpus", default=None, metavar="SOURCE",
                        help="learn from this music from now on: a folder, a glob ('lib/**/*.flac'), a metadata table "
                             "(CSV / Parquet with a path column) or an s3:// prefix; `demo` goes back to the demo "
                             "corpus. Recorded as corpus.source in params.yaml (the active profile), so DVC and the "
                             "sensors see it too")
    parser.set_defaults(func=run_demo)


def configure_ui(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.set_defaults(func=run_ui)


def run_demo(args) -> int:
    """One `lyra demo` per checkout at a time: a second is refused, naming the first (components/common/holder.py)."""
    from components.common.holder import exclusive

    _prepare_environment(args.profile)
    if args.corpus is not None:
        from components.common.errors import LyraError

        try:
            print(use_corpus(args.corpus, REPO_ROOT / "params.yaml"))
        except LyraError as exc:
            print(f"lyra demo --corpus: {exc}", file=sys.stderr)
            return 2
    with exclusive(Path(os.environ["DAGSTER_HOME"]) / "lyra-demo.lock", f"the lifecycle of {REPO_ROOT} (lyra demo)"):
        return _run_demo(args)


def use_corpus(spec: str, params_path: Path) -> str:
    """Record `spec` as corpus.source of the active profile in params.yaml (comments kept) and regenerate
    dvc.yaml, whose corpus stage depends on a local source; returns what changed, in a sentence."""
    from ruamel.yaml import YAML
    from yaml import safe_load

    from components.common.atomic import atomic_write_text
    from components.corpus.sources import parse
    from components.pipeline import render_dvc_yaml

    source = parse(spec)
    value = source.spec if source.kind in ("demo", "s3") else os.path.abspath(source.spec)
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    doc = yaml.load(params_path.read_text())
    profile = os.environ.get("LYRA_PROFILE") or doc["profile"]
    section = doc.setdefault(profile, {}).setdefault("corpus", {})
    if section.get("source", "demo") == value:
        return f"corpus.source is already {value}"
    section["source"] = value
    text = io.StringIO()
    yaml.dump(doc, text)
    atomic_write_text(params_path, text.getvalue())
    atomic_write_text(params_path.parent / "dvc.yaml", render_dvc_yaml(safe_load(text.getvalue())))
    return (f"corpus.source = {value} ({source.kind}) in {params_path.name}, profile {profile}; dvc.yaml regenerated"
            + ("" if source.kind == "demo" else "; `lyra demo --corpus demo` goes back to the demo corpus"))


def _run_demo(args) -> int:
    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.defs.jobs import job_selection
    from orchestration.dvc import DvcResource

    started = time.monotonic()
    selection = dg.AssetSelection.from_string(args.select) & job_selection(args.job)
    selected = sorted(selection.resolve(defs.resolve_asset_graph()))
    if not selected:
        print(f"--select {args.select!r} names no asset of the {args.job} job", file=sys.stderr)
        return 2
    run_config: dict = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    if args.force:
        run_config["ops"] = {k.to_python_identifier(): {"config": {"force": True}} for k in selected}
    # the job's own executor (the lifecycle's runs two steps at a time), as a UI-launched run would use
    with dg.DagsterInstance.get() as instance, dg.execute_job(
            dg.reconstructable(_job_factory(args.job)), instance=instance, run_config=run_config,
            raise_on_error=False, asset_selection=selected) as result:
        _print_summary(result, time.monotonic() - started)
        success = result.success
    if success and args.job == "lifecycle":
        _promote_accepted(args.profile)
    if success and not args.no_push:
        DvcResource().push()
        print("data pushed to the DVC remote (dvc push)")
    print(f"\nOpen the Dagster UI on these runs and assets: lyra ui   (DAGSTER_HOME={os.environ['DAGSTER_HOME']})")
    return 0 if success else 1


def lifecycle_job():
    from orchestration.definitions import defs

    return defs.resolve_job_def("lifecycle")


def scaling_job():
    from orchestration.definitions import defs

    return defs.resolve_job_def("scaling")


def _job_factory(name: str):
    """A module-level function returning the job: what Dagster needs to rebuild it in each step process."""
    return {"lifecycle": lifecycle_job, "scaling": scaling_job}[name]


def _promote_accepted(profile: str | None) -> None:
    """Every model its gates accepted moves through staging to production in the demo's own registry
    repository (never the project's git), so `lyra generate --model lyra@production` works right after."""
    from components.registry.promote import promote_accepted
    from components.registry.registry import Registry

    registry = Registry(REPO_ROOT, profile=profile or os.environ.get("LYRA_PROFILE"))
    outcomes = promote_accepted(registry, reason="lyra demo: accepted by its gates in the demo run", actor="lyra demo")
    print(f"\npromotion (registry repository {os.path.relpath(registry.git, REPO_ROOT)}, audit: lyra registry audit)")
    for o in outcomes:
        print(f"  {o.model:16s} {o.version or '-':9s} {o.outcome:12s} {o.detail}")
    if any(o.model == "lyra" and o.outcome in ("promoted", "held") for o in outcomes):
        print('  try: lyra generate "a chorale played by a string ensemble" --model lyra@production '
              "--codec omnicodec@production --out chorale.wav")


def _step_seconds(result) -> dict[str, float]:
    """step key -> wall seconds of the step (launch, the stage's process, DVC's commit, its checks)."""
    return {e.step_key: e.event_specific_data.duration_ms / 1000 for e in result.all_events
            if e.event_type_value == "STEP_SUCCESS" and e.step_key}


def _print_summary(result, seconds: float) -> None:
    took = _step_seconds(result)
    print(f"\n{'asset':18s} {'status':10s} {'s':>5s}  highlights")
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        meta = mat.metadata
        status = "reused" if getattr(meta.get("reused"), "value", False) else "built"
        if "registered" in meta:           # a registry version asset: new version, or the weights were known
            status = f"{meta['version'].value} new" if meta["registered"].value else f"{meta['version'].value} same"
        highlights = ", ".join(
            f"{k}={_fmt(v.value)}" for k, v in meta.items()
            if k not in ("reused", "code_version", "profile", "dvc_stage") and not k.startswith("check_")
            and isinstance(v.value, (int, float)) and not isinstance(v.value, bool)
        )[:110]
        step = took.get(event.step_key)
        print(f"{mat.asset_key.to_user_string():18s} {status:10s} {step if step is not None else float('nan'):5.0f}  "
              f"{highlights}")
    for event in result.get_asset_check_evaluations():
        # what a passed check could not measure on this corpus is said too (components/common/stage.py)
        said = not event.passed or "not measurable" in (event.description or "")
        why = f" ({event.description})" if said and event.description else ""
        # a warning-severity check that fails is a reported outcome (e.g. RLAIF refused), not a failed run
        failed = "warning" if getattr(event.severity, "value", "") == "WARN" else "FAILED"
        print(f"  check {event.asset_key.to_user_string()}:{event.check_name}: {'passed' if event.passed else failed}{why}")
    print(f"\nrun {result.run_id} {'succeeded' if result.success else 'FAILED'} in {seconds:.0f} s")


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def run_ui(args) -> int:
    """The Dagster UI, and `lyra serve` beside it (unless its port is taken, e.g. by a `lyra serve` already
    running): it serves the reports the UI links to over HTTP, and the listening room."""
    import socket

    _prepare_environment(None)
    from components.config import load_stage_config
    from components.serving.config import ServeConfig

    serve_cfg = load_stage_config("serve", ServeConfig)
    serve = None
    with socket.socket() as probe:
        taken = probe.connect_ex((serve_cfg.host, serve_cfg.port)) == 0
    if not taken:
        serve = subprocess.Popen([sys.executable, "-m", "components.cli", "serve"])
        print(f"starting: lyra serve (reports and the listening room on http://{serve_cfg.host}:{serve_cfg.port}/)")
    cmd = [sys.executable, "-m", "dagster", "dev", "-m", "orchestration.definitions", "-h", args.host, "-p", str(args.port)]
    print("starting:", " ".join(cmd[1:]))
    try:
        return subprocess.call(cmd)
    finally:
        if serve is not None:
            serve.terminate()
            serve.wait(timeout=30)
