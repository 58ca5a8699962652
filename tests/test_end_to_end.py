"""The whole lifecycle on a shrunken tiny profile, through Dagster, in a throwaway copy of the repo, on a team's
library instead of the demo corpus (`lyra demo --corpus FOLDER`).

The test makes its own library (tests/curation/library.py: Artist/Album/NN Title.ext in FLAC, OGG, MP3 and WAV,
tagged with artist, album, genre and mood, no instrument or key tags). Runs `lyra demo` twice: the first run
must build every asset with its checks passing, and what the library cannot show (the judge's instrument head:
no instrument tags) must be reported as not measurable, never passed silently; the second, with nothing
changed, must re-run no stage (DVC reports them all up to date) and leave dvc.lock byte-identical. Then DVC
is asked what an edit would re-run: another profile's params, nothing; the sampling stage's module, the
sampling stage and not Lyra's pretraining; a recording added to the library, the corpus stage. The demo
corpus's own stage is covered by tests/corpus and tests/curation/test_demo_corpus_end_to_end.py (and `make
demo`); one end-to-end run fits the suite's time budget, two did not.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.config import deep_merge
from components.pipeline import STAGES as ALL_STAGES
from components.pipeline import job_stages

STAGES = job_stages("lifecycle")   # what `lyra demo` runs; the scaling sweep has its own job

REPO = Path(__file__).resolve().parents[1]

# Smaller than tiny, so the test costs a few minutes; keys must exist in the stage configs.
E2E_OVERRIDES: dict = yaml.safe_load((Path(__file__).parent / "e2e_params.yaml").read_text())


def copy_repo(dst: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if rel.startswith("registry/"):       # the checkout's model versions: a test starts from an empty registry
            continue
        src = REPO / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "snapshot"]):
        subprocess.run(cmd, cwd=dst, check=True)


def statuses(stdout: str) -> dict[str, str]:
    """Asset -> built/reused, from the summary table `lyra demo` prints at the end."""
    found = {}
    for stage in STAGES:
        match = re.search(rf"^{stage.name}\s+(built|reused)\s", stdout, flags=re.MULTILINE)
        if match:
            found[stage.name] = match.group(1)
    return found


def modified(repo: Path) -> set[str]:
    """Paths `git status` reports as changed or new in the checkout."""
    lines = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True).stdout
    return {line[3:] for line in lines.splitlines()}


# 4 artists x 2 albums x 2 tracks of 12 s: 16 recordings, 8 albums (the split groups)
LAYOUT = [(artist, f"{artist} {record}", genre, mood, fmt, 2)
          for artist, genre, mood, fmt in (("Ann Ode", "Jazz", "mellow", "flac"), ("Bo Reel", "Folk", "lively", "mp3"),
                                           ("Cy Fugue", "Baroque", None, "ogg"), ("Di Drone", None, "dark", "wav"))
          for record in ("I", "II")]


def run_demo(repo: Path, env: dict, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "components.cli", "demo", "--no-push", *extra], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=1500)


def failure_report(proc: subprocess.CompletedProcess) -> str:
    """The demo's tail, plus any native crash a stage printed (stage processes run with PYTHONFAULTHANDLER)."""
    crashes = [proc.stderr[m.start():m.start() + 3000] for m in re.finditer(r"Fatal Python error", proc.stderr)]
    return "\n".join([proc.stdout[-4000:], proc.stderr[-4000:], *crashes])


@pytest.mark.slow
def test_lifecycle_end_to_end_then_no_op(tmp_path):
    from tests.curation.library import make_library

    library = make_library(tmp_path / "library", layout=LAYOUT, seconds=12.0)
    repo = tmp_path / "repo"
    copy_repo(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    # the samples gate on the judge's instrument head, as in the tiny profile (e2e_params turns it off); a
    # shorter codec run (the browser test's 40 steps pass the gate too): the suite's time budget
    params["tiny"] = deep_merge(params["tiny"], deep_merge(E2E_OVERRIDES, {"generate": {"gate_head": "instrument"},
                                                                          "codec": {"steps": 60, "adv_start_step": 50}}))
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(repo), "DAGSTER_HOME": str(tmp_path / "dagster"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    modified_before = modified(repo)
    first = run_demo(repo, env, "--corpus", str(library))
    assert first.returncode == 0, failure_report(first)
    assert f"corpus.source = {library} (folder)" in first.stdout
    params = yaml.safe_load((repo / "params.yaml").read_text())          # as --corpus left it
    lock_after_first = (repo / "dvc.lock").read_bytes()
    for stage in STAGES:
        for out in stage.outs:
            assert (repo / out / "lineage.json").is_file(), f"{stage.name} wrote no lineage for {out}"
        assert json.loads((repo / stage.metrics_path).read_text()), stage.name
    assert "FAILED" not in first.stdout
    assert statuses(first.stdout) == {s.name: "built" for s in STAGES}, first.stdout[-3000:]
    library_is_the_corpus_and_what_it_cannot_show_is_said(repo, first.stdout)

    # what the Dagster UI shows, read from the instance it shows (the browser tests in tests/ui drive the UI itself):
    # every asset materialized, every check's latest execution passed, the partitions recorded
    import dagster as dg

    from orchestration.defs.assets.registry import registered_models

    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    try:
        for name in [s.name for s in STAGES] + [f"registry/{m}" for m in registered_models()]:
            key = dg.AssetKey(name.split("/"))
            assert instance.get_latest_materialization_event(key) is not None, f"{name} shows no materialization"
        for stage in STAGES:
            for check in [*stage.checks, *stage.gates]:
                [record] = instance.event_log_storage.get_asset_check_execution_history(
                    dg.AssetCheckKey(dg.AssetKey(stage.name), check.name), limit=1)
                assert record.status.value == "SUCCEEDED", (stage.name, check.name, record.status)
        for stage in ALL_STAGES:            # each partition recorded by the fan-out before its whole stage
            if stage.part_argv:
                assert len(instance.get_materialized_partitions(dg.AssetKey(f"{stage.name}_part"))) == 2, stage.name
    finally:
        instance.dispose()

    # the user's checkout: no commit, no tag (dvc.lock and data/metrics may change: DVC's normal way)
    def git(*args: str, cwd: Path = repo) -> list[str]:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.split()

    assert git("tag") == [] and git("rev-list", "--count", "HEAD") == ["1"]
    changed = modified(repo) - modified_before          # params.yaml is this test's own edit (and --corpus's)
    assert all(p in ("dvc.lock", "dvc.yaml") or p.startswith("data/metrics/") for p in changed), changed

    # every model became a version in the demo's own registry repository (ignored by the project), was
    # accepted by its gates and promoted through staging to production, so `lyra@production` resolves
    registry_git = repo / ".lyra" / "registry"
    tags = git("tag", cwd=registry_git)
    for model in registered_models():
        assert f"{model}@v0.0.1" in tags and f"{model}#candidate#1" in tags, (model, tags)
        assert any(t.startswith(f"{model}#production#") for t in tags), (model, tags)
        assert (repo / "data" / "registry" / "reports" / model / "v0.0.1" / "index.html").is_file()
    lyra_report = (repo / "data" / "registry" / "reports" / "lyra" / "v0.0.1" / "index.html").read_text()
    assert "Independent evaluation" in lyra_report and "KAD x1000" in lyra_report
    assert re.search(r"^\s+lyra\s+v0\.0\.1\s+promoted\s", first.stdout, flags=re.MULTILINE), first.stdout[-2000:]
    resolved = subprocess.run([sys.executable, "-c", "from components.registry.registry import resolve_model_argument as r; "
                               "print(r('lyra@production'))"], cwd=repo, env=env, capture_output=True, text=True)
    assert resolved.returncode == 0 and "data/registry/artifacts" in resolved.stdout, resolved.stderr[-2000:]

    second = run_demo(repo, env)
    assert second.returncode == 0, failure_report(second)
    assert statuses(second.stdout) == {s.name: "reused" for s in STAGES}, second.stdout[-3000:]
    # nothing changed: no new version, no new promotion, still nothing in the project's git
    assert git("tag", cwd=registry_git) == tags and git("tag") == [] and git("rev-list", "--count", "HEAD") == ["1"]
    assert (repo / "dvc.lock").read_bytes() == lock_after_first

    # what would re-run after an edit (asked of DVC, nothing is run)
    def stale() -> set[str]:
        out = subprocess.run([str(Path(sys.executable).parent / "dvc"), "status", "--json"], cwd=repo, env=env,
                             capture_output=True, text=True, check=True).stdout
        return set(json.loads(out or "{}")) & {s.name for s in STAGES}      # the scaling sweep is never run here

    params["cluster"]["lm"]["steps"] = params["cluster"]["lm"]["steps"] + 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert stale() == set()                                     # another profile's block: nothing is stale
    with open(repo / "components" / "lyra" / "sample.py", "a") as fh:
        fh.write("\n# an edit to the sampling stage\n")
    assert "lyra_samples" in stale() and "lyra_pretrain" not in stale()

    # a gate's verdict survives another thread count (`lyra stability`, on this small run's cheapest gated stage;
    # seeds, RLAIF and the other gates are the tiny profile's table in the README: the suite's budget holds two runs)
    for stage, seeds, threads in (("omnicodec_eval", ["0"], ["1", "2"]),):
        proc = subprocess.run([sys.executable, "-m", "components.cli", "stability", stage, "--seeds", *seeds,
                               "--threads", *threads, "--out", str(tmp_path / "stability")],
                              cwd=repo, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        summary = json.loads((tmp_path / "stability" / stage / "summary.json").read_text())
        expected_runs = len(seeds) + len(threads) - 1
        assert summary["checks"], stage
        for check, result in summary["checks"].items():
            assert result["runs"] == expected_runs and result["passed"] == expected_runs, (check, result)
            assert not result["flipped"] and result["spread"], (check, result)

    # the library is what DVC tracks: a new recording makes the corpus stage (and so all after it) stale
    (library / "Ann Ode" / "Ann Ode I" / "03 New.wav").write_bytes(
        (library / "Di Drone" / "Di Drone I" / "01 Track 1.wav").read_bytes())
    assert "corpus" in stale()


def library_is_the_corpus_and_what_it_cannot_show_is_said(repo: Path, stdout: str) -> None:
    import pandas as pd

    def metrics(stage: str) -> dict:
        return json.loads((repo / "data" / "metrics" / f"{stage}.json").read_text())

    corpus = metrics("corpus")
    assert corpus["source_kind"] == "folder" and corpus["files"] == 17      # 16 recordings + 1 sidecar
    curated = metrics("curated_clips")
    assert curated["files_curated"] == 16 and curated["quarantine_rows"] == 0, curated
    assert all(curated["clips_by_split"][s] > 0 for s in ("train", "valid", "test")), curated["clips_by_split"]
    meta = [json.loads(m) for m in pd.read_parquet(repo / "data" / "curated" / "manifest.parquet")["meta"]]
    assert {m["artist"] for m in meta} == {"Ann Ode", "Bo Reel", "Cy Fugue", "Di Drone"}
    # fanned out (e2e_params: 2 partitions, both at once): the whole stages found every file's and clip's work done
    assert curated["files_from_partitions"] == 16 and curated["source_seconds"] == 0, curated
    assert metrics("captions")["clips_analysed"] == 0 and metrics("token_shards")["clips_encoded"] == 0
    for stage in ("curated_clips", "captions", "token_shards"):
        assert len([p for p in (repo / "data" / "parts" / stage).iterdir() if p.is_dir()]) == 2, stage
    with_field = metrics("captions")["clips_with_metadata"]
    assert with_field["genre"] > 0 and with_field["instrument"] == 0, with_field

    assert "0 of 20 training clips are tagged with their instrument" in \
        metrics("conditioning_judge")["not_measurable"]["judge_instrument"]
    samples = metrics("lyra_samples")
    assert "judge_instrument" in samples["not_measurable"] and "judge_instrument_n" not in samples
    # the independent evaluator read the library's clips (its distances) but no prompt names an instrument it tags
    assert samples["independent_adherence_n"] == 0 and samples["independent_kad_floor"] is not None
    assert metrics("oraql_audit")["n_systems"] == 8
    for check in ("lyra_samples:judge_hears_the_prompt: passed (nothing measured; not measurable on this corpus - "
                  "text_beats_no_text: the judge has no instrument head",
                  "lyra_rlaif:rlaif_gate: passed (passed: within_kl_bound, diversity_kept, not_more_silent, "
                  "independent_kad_not_worse; not measurable on this corpus - judge_not_worse: the judge has no "
                  "instrument head"):
        assert check in stdout, stdout[-3000:]
    assert metrics("lyra_best_of_n")["judge"].startswith("not measurable on this corpus")
    assert set(metrics("lyra_influence")["not_measurable"]) == {"influence_key", "influence_tempo"}
