"""The whole lifecycle on a team's library instead of the demo corpus: `lyra demo --corpus FOLDER`.

The test makes its own library (tests/curation/library.py: Artist/Album/NN Title.ext in flac, ogg, mp3 and wav,
tagged with artist, album, genre and mood, no instrument or key tags) and runs every stage of the lifecycle on it
with the shrunken settings of tests/e2e_params.yaml. Every stage must build; what the library cannot show (the
judge's instrument head: no instrument tags) must be reported as not measurable, never passed silently; then
DVC must see a file added to the library.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.config import deep_merge
from components.pipeline import job_stages
from tests.curation.library import make_library
from tests.test_end_to_end import E2E_OVERRIDES, copy_repo, failure_report, statuses

STAGES = job_stages("lifecycle")

# 4 artists x 2 albums x 2 tracks of 12 s: 16 recordings, 8 albums (the split groups)
LAYOUT = [(artist, f"{artist} {record}", genre, mood, fmt, 2)
          for artist, genre, mood, fmt in (("Ann Ode", "Jazz", "mellow", "flac"), ("Bo Reel", "Folk", "lively", "mp3"),
                                           ("Cy Fugue", "Baroque", None, "ogg"), ("Di Drone", None, "dark", "wav"))
          for record in ("I", "II")]


@pytest.mark.slow
def test_the_lifecycle_runs_on_a_team_library(tmp_path):
    library = make_library(tmp_path / "library", layout=LAYOUT, seconds=12.0)
    repo = tmp_path / "repo"
    copy_repo(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    # the samples gate on the judge's instrument head, as in the tiny profile (e2e_params turns it off)
    params["tiny"] = deep_merge(params["tiny"], deep_merge(E2E_OVERRIDES, {"generate": {"gate_head": "instrument"}}))
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(repo), "DAGSTER_HOME": str(tmp_path / "dagster"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    proc = subprocess.run([sys.executable, "-m", "components.cli", "demo", "--no-push", "--corpus", str(library)],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, failure_report(proc)
    assert f"corpus.source = {library} (folder)" in proc.stdout
    assert statuses(proc.stdout) == {s.name: "built" for s in STAGES}, proc.stdout[-3000:]

    def metrics(stage: str) -> dict:
        return json.loads((repo / "data" / "metrics" / f"{stage}.json").read_text())

    corpus = metrics("corpus")
    assert corpus["source_kind"] == "folder" and corpus["files"] == 17      # 16 recordings + 1 sidecar
    curated = metrics("curated_clips")
    assert curated["files_curated"] == 16 and curated["quarantine_rows"] == 0, curated
    assert all(curated["clips_by_split"][s] > 0 for s in ("train", "valid", "test")), curated["clips_by_split"]
    manifest_meta = [json.loads(m) for m in __import__("pandas").read_parquet(repo / "data/curated/manifest.parquet")["meta"]]
    assert {m["artist"] for m in manifest_meta} == {"Ann Ode", "Bo Reel", "Cy Fugue", "Di Drone"}
    captions = metrics("captions")
    assert captions["clips_with_metadata"]["genre"] > 0 and captions["clips_with_metadata"].get("instrument", 0) == 0

    # what the library cannot show is said, in the stage's metrics and in its gate's verdict
    assert "0 of 20 training clips are tagged with their instrument" in \
        metrics("conditioning_judge")["not_measurable"]["judge_instrument"]
    samples = metrics("lyra_samples")
    assert "judge_instrument" in samples["not_measurable"] and "judge_instrument_n" not in samples
    for check in ("lyra_samples:judge_hears_the_prompt: passed (nothing measured; not measurable on this corpus - "
                  "text_beats_no_text: the judge has no instrument head",
                  "lyra_rlaif:rlaif_gate: passed (passed: within_kl_bound, diversity_kept, not_more_silent; not "
                  "measurable on this corpus - judge_not_worse: the judge has no instrument head"):
        assert check in proc.stdout, proc.stdout[-3000:]
    assert metrics("lyra_best_of_n")["judge"].startswith("not measurable on this corpus")
    assert set(metrics("lyra_influence")["not_measurable"]) == {"influence_key", "influence_tempo"}

    # the library is what DVC tracks: a new recording makes the corpus stage (and so all after it) stale
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert any(dep["path"] == str(library) for dep in lock["stages"]["corpus"]["deps"])
    (library / "Ann Ode" / "Ann Ode I" / "03 New.wav").write_bytes((library / "Di Drone" / "Di Drone I" /
                                                                    "01 Track 1.wav").read_bytes())
    status = subprocess.run([str(Path(sys.executable).parent / "dvc"), "status", "--json", "corpus"], cwd=repo, env=env,
                            capture_output=True, text=True, check=True).stdout
    assert "corpus" in json.loads(status or "{}"), status
