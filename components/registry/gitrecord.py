"""The registry's record in git: GTO tags for versions and stages, commits for entries and the audit log.

    lyra@v0.0.3            annotated tag on the commit that added registry/lyra/v0.0.3.json
    lyra#staging#5         annotated tag: v0.0.3 assigned to staging, message = the decision (JSON)
    registry/audit.jsonl   every decision, refusals included, one JSON line each (committed)

GTO (https://dvc.org/doc/gto) reads and writes those tags; it needs no server, works offline and
travels with `git push --tags`, beside the DVC-tracked data.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

from components.common.errors import LyraError


class RegistryGitError(LyraError, RuntimeError):
    pass


# One GTO call at a time in this process: GTO parses `.gto` with one module-level ruamel YAML object, which is not
# thread-safe; `lyra serve`'s refresh thread reading the holder while a promotion ran in another thread broke the
# parse ("expected <block end>, but found '['" -> WrongConfig) in a CI run
_GTO = threading.Lock()


def _git(repo: Path, *args: str, env: dict | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RegistryGitError(f"git {' '.join(args)} failed in {repo}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.strip()


def check_repo(repo: Path) -> None:
    try:
        _git(repo, "rev-parse", "--verify", "HEAD")
    except (RegistryGitError, FileNotFoundError) as exc:
        raise RegistryGitError(f"{repo}: the registry lives in git tags and needs a git repository with a commit "
                               f"(git init && git commit): {exc}") from exc


def head(repo: Path) -> str:
    return _git(repo, "rev-parse", "HEAD")


def head_or_none(repo: Path) -> str | None:
    """The project's revision for lineage; None outside git (a stage run from an exported tree)."""
    try:
        return head(repo)
    except (RegistryGitError, FileNotFoundError):
        return None


def init_repo(repo: Path, gto_config: str | None) -> None:
    """A new registry repository: GTO's config (the stage names) in its first commit."""
    repo.mkdir(parents=True, exist_ok=True)
    _git(repo, "init", "-q")
    if gto_config:
        (repo / ".gto").write_text(gto_config)
    (repo / "README.md").write_text(
        "# Model registry\n\nVersions (`registry/<model>/vX.Y.Z.json`), the audit log (`registry/audit.jsonl`) and GTO "
        "tags (`model@vX.Y.Z`, `model#stage#N`), written by `lyra registry` and `lyra promote`. The weights live in "
        "the project's artifact store (params.yaml `registry.store`).\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "registry repository", env=_identity_env(repo, "lyra"))


def default_actor(repo: Path) -> str:
    try:
        name = _git(repo, "config", "user.name")
    except RegistryGitError:
        name = ""
    return name or os.environ.get("USER") or "unknown"


def _identity_env(repo: Path, actor: str) -> dict:
    env = dict(os.environ)
    email = f"{actor.replace(' ', '.').lower()}@lyra.local"
    env.update(GIT_AUTHOR_NAME=actor, GIT_AUTHOR_EMAIL=email)
    try:
        _git(repo, "config", "user.name")
    except RegistryGitError:       # no identity configured (CI, a fresh machine): commit as the actor
        env.update(GIT_COMMITTER_NAME=actor, GIT_COMMITTER_EMAIL=email)
    return env


def commit_paths(repo: Path, paths: list[str], message: str, actor: str) -> str:
    """Commit only `paths` (other staged or modified files stay as they are); the new HEAD."""
    _git(repo, "add", "--", *paths)
    if not _git(repo, "status", "--porcelain", "--", *paths):
        return head(repo)
    _git(repo, "commit", "-q", "-m", message, "--", *paths, env=_identity_env(repo, actor))
    return head(repo)


def has_tag(repo: Path, tag: str) -> bool:
    return bool(_git(repo, "tag", "-l", tag).strip())


def register_version(repo: Path, name: str, version: str, ref: str, message: str, actor: str) -> None:
    import gto.api

    with _GTO:
        gto.api.register(str(repo), name, ref, version=version, message=message, author=actor,
                         author_email=f"{actor.replace(' ', '.').lower()}@lyra.local")


def assign_stage(repo: Path, name: str, version: str, stage: str, message: str, actor: str) -> str:
    """Assign `stage` to the version; the tag GTO created."""
    import gto.api

    with _GTO:
        gto.api.assign(str(repo), name, stage, version=version, message=message, author=actor,
                       author_email=f"{actor.replace(' ', '.').lower()}@lyra.local")
    return stage_holder(repo, name, stage, tag=True) or ""


def stage_holder(repo: Path, name: str, stage: str, tag: bool = False) -> str | None:
    """The version holding `stage` now (its latest assignment), or None."""
    import gto.api
    from gto.exceptions import GTOException

    try:
        with _GTO:
            found = gto.api.find_versions_in_stage(str(repo), name, stage)
    except GTOException:
        return None
    if not found:
        return None
    vstage = found[0] if isinstance(found, list) else found
    if tag:
        return vstage.assignments[-1].tag if vstage.assignments else None
    return vstage.version


def stage_history(repo: Path, name: str, version: str) -> list[str]:
    """Every stage the version was ever assigned to."""
    import gto.api
    from gto.exceptions import GTOException

    try:
        with _GTO:
            shown = gto.api.show(str(repo), name, assignments_per_version=-1, versions_per_stage=-1)
    except GTOException:
        return []
    for row in shown:
        if row.get("version") == version:
            return sorted({s["stage"] for s in row.get("stages", [])})
    return []
