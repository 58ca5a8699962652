"""The listening room in a real browser, over a real registry: `lyra serve` holds lyra@production and the
candidate in staging; a person's path through the page (play both, rate, choose, see the tally) runs in
Chromium; then simulated listeners (scripted choices over HTTP, never people) drive the listeners_prefer
gate to a refusal and to a pass, and the service swaps to the promoted version by itself.

Screenshots stay in test-artifacts/ui/ (listening-room.png is the README's)."""

from __future__ import annotations

import json
import random
import time
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest
import yaml

from tests.registry.conftest import CODEC_EVAL, LYRA_PRETRAIN, LYRA_SAMPLES, project  # noqa: F401 - fixture
from tests.serving.conftest import Running, embed, free_port, write_models
from tests.ui.test_browser import ARTIFACTS, CHROMIUM, FLAGS


def registered_versions(project):
    """omnicodec v0.0.1 and lyra v0.0.1 in production, lyra v0.0.2 (another seed) in staging."""
    import shutil

    from components.registry.promote import promote

    root = project.root
    models = root / "data" / "models"
    lyra0, codec, oraql = write_models(root / "scratch", seed=0)
    lyra1, _, _ = write_models(root / "scratch", seed=1)
    shutil.copytree(codec, models / "omnicodec")
    shutil.copytree(lyra0, models / "lyra")
    project.write_lineage(models / "omnicodec", "omnicodec")
    project.write_lineage(models / "lyra", "lyra_pretrain")
    project.write_metrics("omnicodec", {"valid_mel_distance": 0.9, "steps": 10})
    project.write_metrics("omnicodec_eval", CODEC_EVAL)
    project.write_metrics("lyra_pretrain", LYRA_PRETRAIN)
    project.write_metrics("lyra_samples", LYRA_SAMPLES)
    reg = project.registry()
    reg.register("lyra")                                   # registers the codec it was built on too
    for name in ("omnicodec", "lyra"):
        for stage in ("staging", "production"):
            assert promote(reg, name, "v0.0.1", stage, "first version", actor="setup").outcome == "promoted"
    shutil.rmtree(models / "lyra")
    shutil.copytree(lyra1, models / "lyra")
    project.write_lineage(models / "lyra", "lyra_pretrain")
    reg.register("lyra")
    assert promote(reg, "lyra", "v0.0.2", "staging", "retrained", actor="setup").outcome == "promoted"
    return reg, oraql


class Listener:
    """One HTTP client with its own cookie (a pseudonymous listener id)."""

    def __init__(self, url: str):
        self.url = url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        self.opener.open(url + "/").read()

    def get(self, path: str) -> dict:
        return json.loads(self.opener.open(self.url + path, timeout=120).read())

    def vote(self, pair: str, choice: str) -> dict:
        req = urllib.request.Request(self.url + "/v1/votes", data=json.dumps({"pair": pair, "choice": choice}).encode(),
                                     headers={"Content-Type": "application/json"})
        return json.loads(self.opener.open(req, timeout=60).read())


def simulated_listeners(url: str, store, n: int, p_candidate: float, seed: int) -> None:
    """n scripted listeners (simulated, not people): each takes its next blind pair and picks the candidate's
    side with probability p_candidate (the script looks the side up in the store; a person cannot)."""
    rng = random.Random(seed)
    for _ in range(n):
        listener = Listener(url)
        pair = listener.get("/v1/pairs/next")
        row = store.pair(pair["id"])
        candidate_side = "a" if row["system_a"] == "candidate" else "b"
        other = "b" if candidate_side == "a" else "a"
        listener.vote(pair["id"], candidate_side if rng.random() < p_candidate else other)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_listener_votes_in_the_browser_and_simulated_listeners_decide_the_promotion(project, monkeypatch, tmp_path):
    from playwright.sync_api import sync_playwright

    from components.lyra import text
    from components.registry.promote import promote
    from components.serving.app import build_app
    from components.serving.cli import build_service
    from components.serving.config import ServeConfig

    monkeypatch.setattr(text, "encode_prompts", embed)
    params = project.root / "params.yaml"
    raw = yaml.safe_load(params.read_text())
    raw["tiny"]["registry"]["models"]["lyra"]["listeners_prefer"] = {"production": {"min_judgements": 20}}
    params.write_text(yaml.safe_dump(raw))
    reg, oraql = registered_versions(project)
    cfg = ServeConfig(candidate="lyra@staging", oraql=str(oraql), pair_seconds=1.0, watch_seconds=0.5)
    service = build_service(cfg, project.root)
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not found: `make test-services` installs Debian's chromium")

    with Running(build_app(service), free_port()) as srv:
        assert service.engine.versions() == {"model": "lyra@v0.0.1", "candidate": "lyra@v0.0.2"}
        # a person's path: play both, rate one, choose, see the tally
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=FLAGS + ["--autoplay-policy=no-user-gesture-required"])
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.set_default_timeout(60_000)
            page.goto(srv.url + "/")
            page.wait_for_function("document.getElementById('prompt').textContent.length > 0 && "
                                   "!document.getElementById('prompt').textContent.startsWith('generating')")
            assert page.is_disabled("#choose-a")                       # not before both are played
            for side in "ab":
                page.evaluate(f"document.getElementById('audio-{side}').play()")
            page.wait_for_function("!document.getElementById('choose-a').disabled")
            page.check("input[name=rating-a][value='4']")
            page.check("input[name=rating-b][value='2']")
            page.screenshot(path=str(_artifact("listening-room.png")), full_page=True)
            page.click("#choose-a")
            page.wait_for_selector("text=1 judgement(s).")
            page.wait_for_selector("text=Candidate lyra@v0.0.2 preferred over lyra@v0.0.1")
            page.screenshot(path=str(_artifact("listening-room-voted.png")), full_page=True)
            browser.close()
        [judgement] = service.store.judgements()
        assert (judgement["choice"], judgement["rating_a"], judgement["rating_b"]) == ("a", 4, 2)
        assert {judgement["version_a"], judgement["version_b"]} == {"lyra@v0.0.1", "lyra@v0.0.2"}

        simulated_listeners(srv.url, service.store, 25, p_candidate=0.5, seed=0)
        refused = promote(reg, "lyra", "v0.0.2", "production", "listeners decide")
        assert refused.outcome == "refused" and [g.name for g in refused.failed] == ["listeners_prefer"]

        simulated_listeners(srv.url, service.store, 45, p_candidate=0.95, seed=1)
        promoted = promote(reg, "lyra", "v0.0.2", "production", "listeners decide")
        assert promoted.outcome == "promoted", promoted.summary()
        gate = next(g for g in promoted.gates if g.name == "listeners_prefer")
        assert gate.numbers["n"] == 71 and gate.numbers["lower"] > 0.5

        deadline = time.time() + 60                                   # the service follows the promotion
        while service.engine.versions()["model"] != "lyra@v0.0.2":
            assert time.time() < deadline, "the service never swapped to the promoted version"
            time.sleep(0.2)


def _artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
