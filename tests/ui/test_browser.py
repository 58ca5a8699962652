"""The Dagster UI in a real browser: materialize the codec's slice of the lifecycle, open its registry
version's materialization, follow the report link, run the promotion job and see it refused by a gate.

Playwright drives Debian's Chromium (`make test-services` installs it; never `playwright install`).
Screenshots stay in test-artifacts/ui/ after the run (git-ignored; LYRA_TEST_ARTIFACTS moves them). The profile is the end-to-end test's shrunken
tiny profile with a shorter codec run. Measured on 2 cores shared with other jobs (load 4-9): 137-187 s,
of which the corpus is ~33 s and the webserver's start ~10-40 s; 7 min at load 10 before the run page
was left alone while the run works (Chromium re-rendering it took half a core).
"""

from __future__ import annotations

import json
import os
import time
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from components.config import deep_merge
from tests.test_end_to_end import E2E_OVERRIDES, copy_repo
from tests.ui_probe import dagster_webserver

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("LYRA_TEST_ARTIFACTS", REPO / "test-artifacts")) / "ui"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# the codec needs fewer steps than the end-to-end test's 120 to beat the untrained codec's mel distance
UI_OVERRIDES = {"codec": {"steps": 40, "adv_start_step": 30}}
# runs launched from the UI start at once (no daemon needed); no pop-ups over the screenshots
INSTANCE = {"telemetry": {"enabled": False}, "nux": {"enabled": False},
            "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"}}
PROMOTION = """ops:
  promote_model:
    config:
      model: omnicodec
      version: v0.0.1
      to_stage: production
      reason: straight to production from the UI
      actor: ui-test
"""
LOCATION = "orchestration.definitions"


@contextmanager
def browser(profile: Path):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not found: `make test-services` installs Debian's chromium")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, args=FLAGS, headless=True,
                                                       viewport={"width": 1400, "height": 900})
        context.set_default_timeout(60_000)
        try:
            yield context.new_page()
        finally:
            context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _graphql(url: str, query: str) -> dict:
    import urllib.request

    req = urllib.request.Request(url, data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["data"]


def wait_for_run(graphql: str, job: str, timeout: float = 60.0) -> str:
    """The id of the run the UI just launched for `job`."""
    query = '{ runsOrError(filter: {pipelineName: "%s"}, limit: 1) { ... on Runs { results { runId } } } }' % job
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = _graphql(graphql, query)["runsOrError"]["results"]
        if runs:
            return runs[0]["runId"]
        time.sleep(1)
    raise AssertionError(f"no {job} run was launched from the UI")


def wait_until_finished(graphql: str, run_id: str, timeout: float = 480.0) -> str:
    query = '{ runOrError(runId: "%s") { ... on Run { status } } }' % run_id
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _graphql(graphql, query)["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(2)
    raise AssertionError(f"run {run_id} did not finish in {timeout:.0f} s")


@pytest.fixture
def minimal_project(tmp_path):
    repo = tmp_path / "repo"
    copy_repo(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["tiny"] = deep_merge(deep_merge(params["tiny"], E2E_OVERRIDES), UI_OVERRIDES)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(INSTANCE))
    env = {**os.environ, "PYTHONPATH": str(repo), "DAGSTER_HOME": str(home),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return repo, env


@contextmanager
def report_server(repo: Path, env: dict):
    """`lyra serve` in the project (as `lyra ui` starts it): its /reports are what the UI's links point at.
    No model is promoted yet, so it is not ready to generate, but its reports are served."""
    import subprocess

    from tests.serving.conftest import free_port, wait_for

    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "lyra"), "serve", "--port", str(port)], cwd=repo, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", alive=lambda: proc.poll() is None)
        yield {**env, "LYRA_REPORT_BASE_URL": f"http://127.0.0.1:{port}/reports"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_materialize_find_the_report_and_see_a_refused_promotion_in_the_ui(minimal_project, tmp_path):
    repo, env = minimal_project
    with report_server(repo, env) as env, dagster_webserver(repo, env, timeout=180) as graphql, \
            browser(tmp_path / "chromium") as page:
        base = graphql.rsplit("/graphql", 1)[0]

        # 1. materialize the codec's lifecycle (corpus -> curation -> codec -> eval -> registry) from its job page
        page.goto(f"{base}/locations/{LOCATION}/jobs/omnicodec_to_registry")
        page.get_by_role("button", name="Materialize all").click()
        run_id = wait_for_run(graphql, "omnicodec_to_registry")
        # a live run page re-renders its log and Gantt chart constantly (half a core in Chromium): wait on a
        # blank page until the run ends, then open the run to see its result
        page.goto("about:blank")
        assert wait_until_finished(graphql, run_id) == "SUCCESS"
        page.goto(f"{base}/runs/{run_id}")
        page.get_by_text("Success", exact=True).first.wait_for()
        shot(page, "01_lifecycle_run_succeeded")

        # 2. the registry version's materialization links its evaluation report
        page.goto(f"{base}/assets/registry/omnicodec?view=events")
        link = page.locator("a[href$='/reports/omnicodec/v0.0.1/index.html']").first
        link.wait_for()
        shot(page, "02_registry_materialization")
        report_url = link.get_attribute("href")
        assert report_url.startswith("http://127.0.0.1:")       # served over HTTP: a file:// link would not open
        page.goto(report_url)
        assert page.get_by_role("heading", name="omnicodec v0.0.1").is_visible()
        assert page.locator("audio").count() >= 1 and page.get_by_text("valid_mel_distance").first.is_visible()
        shot(page, "03_report")

        # 3. the promotion job, launched from the launchpad, is refused and names its gate
        page.goto(f"{base}/locations/{LOCATION}/jobs/promote/playground")
        page.locator(".CodeMirror").first.click()
        page.keyboard.press("Control+A")
        page.keyboard.press("Delete")
        page.keyboard.insert_text(PROMOTION)
        page.get_by_role("button", name="Launch Run").click()
        page.wait_for_url("**/runs/**")
        page.get_by_text("promotion refused by gate stage_order").first.wait_for(timeout=180_000)
        shot(page, "04_promotion_refused")

    # the decision is in the registry's own repository (params.yaml registry.repo), not the project's checkout
    refusal = json.loads((repo / ".lyra" / "registry" / "registry" / "audit.jsonl").read_text().splitlines()[-1])
    assert refusal["outcome"] == "refused" and refusal["actor"] == "ui-test"
    assert [g["name"] for g in refusal["gates"] if not g["passed"]] == ["stage_order"]
