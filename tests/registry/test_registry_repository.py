"""The registry's own repository: registering and promoting never commit or tag in the project's checkout;
`promote_accepted` (what `lyra demo` ends with) makes `lyra@production` resolvable; `lyra registry
publish` records versions into another registry repository on purpose."""

import json
import subprocess

import pytest

from components.registry.promote import promote_accepted
from components.registry.registry import Registry, resolve_model_argument


@pytest.fixture
def own_repository(project, monkeypatch):
    """The project with the default setting: params.yaml's `registry.repo` (.lyra/registry)."""
    monkeypatch.delenv("LYRA_REGISTRY_REPO", raising=False)
    return project


def git_state(project) -> tuple[str, str, str]:
    return (project.git("rev-parse", "HEAD"), project.git("tag"), project.git("status", "--porcelain"))


def test_registering_and_promoting_leave_the_project_checkout_untouched(own_repository, monkeypatch):
    project = own_repository
    project.train_codec(seed=0, valid_mel_distance=0.9)
    project.train_lyra(seed=0)
    before = git_state(project)
    reg = Registry(project.root)
    assert reg.git == project.root / ".lyra" / "registry" and not reg.git.exists()

    reg.register("lyra", actor="dagster")                     # registers its parent omnicodec first
    outcomes = {o.model: o for o in promote_accepted(reg, reason="demo", actor="lyra demo",
                                                     models=["omnicodec", "lyra"])}

    assert {m: o.outcome for m, o in outcomes.items()} == {"omnicodec": "promoted", "lyra": "promoted"}
    # the project: no commit, no tag, no modified file (.lyra/ is ignored)
    assert git_state(project) == before
    # the record went to the registry's own repository
    tags = subprocess.run(["git", "tag"], cwd=reg.git, capture_output=True, text=True, check=True).stdout.split()
    assert {"lyra@v0.0.1", "lyra#candidate#1", "lyra#staging#2", "lyra#production#3"} <= set(tags)
    promotions = [r for r in reg.audit() if r["event"] == "promotion"]
    assert [(r["model"], r["to_stage"], r["actor"]) for r in promotions] == [
        ("omnicodec", "staging", "lyra demo"), ("omnicodec", "production", "lyra demo"),
        ("lyra", "staging", "lyra demo"), ("lyra", "production", "lyra demo")]
    monkeypatch.chdir(project.root)
    assert resolve_model_argument("lyra@production") == str(reg.resolve("lyra@v0.0.1"))

    # a rerun with the same weights changes nothing
    lines = len(reg.audit())
    again = promote_accepted(reg, reason="demo", actor="lyra demo", models=["omnicodec", "lyra"])
    assert [o.outcome for o in again] == ["held", "held"] and len(reg.audit()) == lines


def test_a_version_its_checks_refused_stays_a_candidate(own_repository):
    project = own_repository
    project.train_codec(seed=0, valid_mel_distance=0.9)
    project.train_lyra(seed=0)
    samples = json.loads((project.root / "data" / "metrics" / "lyra_samples.json").read_text())
    project.write_metrics("lyra_samples", {**samples, "judge_instrument_p_text_vs_no_text": 0.4})   # not significant
    reg = Registry(project.root)
    reg.register("lyra")

    outcome = {o.model: o for o in promote_accepted(reg, reason="demo", actor="lyra demo", models=["lyra"])}["lyra"]
    assert outcome.outcome == "refused" and "judge_hears_the_prompt" in outcome.detail
    assert reg.holder("lyra", "staging") is None and reg.holder("lyra", "production") is None


def test_resolving_before_any_registry_exists_says_where_it_looked(own_repository, monkeypatch):
    monkeypatch.chdir(own_repository.root)
    from components.registry.registry import RegistryError

    with pytest.raises(RegistryError, match="does not exist yet"):
        resolve_model_argument("lyra@production")


def test_publish_records_versions_into_another_registry_once(own_repository, capsys):
    from components.cli import main as lyra

    project = own_repository
    project.train_codec(seed=0, valid_mel_distance=0.9)
    project.train_lyra(seed=0)
    Registry(project.root).register("lyra")
    team = project.root.parent / "team-registry"
    team.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=team, check=True)
    (team / ".gto").write_text((project.root / ".gto").read_text())
    subprocess.run(["git", "add", "-A"], cwd=team, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "team"], cwd=team, check=True)

    args = ["registry", "publish", "--into", str(team), "--repo", str(project.root), "--actor", "erin"]
    assert lyra(args) == 0
    assert "2 version(s) published" in capsys.readouterr().out
    target = Registry(project.root, git=team)
    entry = target.entry("lyra", "v0.0.1")
    assert entry["published_from"]["version"] == "v0.0.1" and entry["lineage"]["parents"]["omnicodec"]["version"] == "v0.0.1"
    assert target.holder("lyra", "candidate") == "v0.0.1" and target.holder("lyra", "production") is None
    assert target.resolve("lyra@v0.0.1") == Registry(project.root).resolve("lyra@v0.0.1")   # one artifact store
    assert lyra(args) == 0 and "the target holds them all" in capsys.readouterr().out


def test_gto_is_called_by_one_thread_at_a_time(monkeypatch, tmp_path):
    """GTO's config parser is shared and not thread-safe (the service's refresh thread and a promotion raced in
    CI): every GTO call of gitrecord holds one lock."""
    import threading
    import time

    import gto.api

    from components.registry import gitrecord

    inside, most = [0], [0]
    guard = threading.Lock()

    def slow_call(*args, **kwargs):
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.02)
        with guard:
            inside[0] -= 1
        return []

    monkeypatch.setattr(gto.api, "find_versions_in_stage", slow_call)
    monkeypatch.setattr(gto.api, "show", slow_call)
    threads = [threading.Thread(target=gitrecord.stage_holder, args=(tmp_path, "lyra", "production")) for _ in range(4)]
    threads += [threading.Thread(target=gitrecord.stage_history, args=(tmp_path, "lyra", "v0.0.1")) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1
