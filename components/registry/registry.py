"""The model registry: versions of each model with their lineage, metrics and checks.

    register("lyra")  data/models/lyra --(deployable files)--> <store>/artifacts/<digest>/
                      + registry/lyra/v0.0.4.json   (lineage, metrics, checks, report)   committed
                      + tag lyra@v0.0.4, tag lyra#candidate#N                            GTO
    resolve("lyra@production") -> <store>/artifacts/<digest of the version production holds>

Entries, the audit log and tags live in the registry repository (`registry.repo`, by default
`.lyra/registry`: a git repository of its own, created on first write and ignored by the project),
never in the project's checkout unless a team says so; `lyra registry publish` copies versions into
another registry repository on purpose.

Registering the same weights twice returns the existing version, so a pipeline run that changed
nothing registers nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path

import yaml

from components.common.atomic import atomic_write_json, atomic_write_text
from components.common.lineage import tree_digest
from components.registry import gitrecord
from components.registry.config import STAGES, ModelSpec, RegistryConfig
from components.registry.store import ArtifactStore, deployable_files, describe
from components.common.errors import LyraError


class RegistryError(LyraError, RuntimeError):
    pass


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def load_registry_config(repo: Path, profile: str | None = None) -> RegistryConfig:
    """params.yaml `registry` over the models the stages declare (`Stage.registers`)."""
    from components.config import load_stage_config
    from components.pipeline import STAGES

    declared = {s.registers.name: s.registers.registry_entry(s.name) for s in STAGES if s.registers}
    return load_stage_config("registry", RegistryConfig, params_path=Path(repo) / "params.yaml", profile=profile,
                             defaults={"models": declared})


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.lstrip("v").split("."))


def registry_repository(project: Path, config: RegistryConfig) -> Path:
    """The git repository that holds the registry's entries, audit log and GTO tags: $LYRA_REGISTRY_REPO,
    else params.yaml `registry.repo` (relative to the project). The default is a repository of its own
    under an ignored path, so `lyra demo` never commits or tags in the project's checkout; a platform
    team points it at a clone of its registry repository (or at the project itself, ".")."""
    chosen = os.environ.get("LYRA_REGISTRY_REPO") or config.repo
    return (Path(project) / chosen).resolve()


class Registry:
    """`repo` is the project (params.yaml, dvc.lock, data/); `git` the registry repository (entries, tags)."""

    def __init__(self, repo: str | os.PathLike, config: RegistryConfig | None = None, profile: str | None = None,
                 git: str | os.PathLike | None = None):
        self.repo = Path(repo).resolve()
        self.profile = profile
        self.config = config or load_registry_config(self.repo, profile)
        self.store = ArtifactStore(self.repo / self.config.store)
        self.git = (self.repo / git).resolve() if git else registry_repository(self.repo, self.config)
        self.records = self.git / self.config.records
        self._lock = None

    # --- reading -------------------------------------------------------------------------
    def spec(self, name: str) -> ModelSpec:
        if name not in self.config.models:
            raise RegistryError(f"model {name!r} is not in params.yaml registry.models "
                                f"(registered models: {', '.join(self.config.models)})")
        return self.config.models[name]

    def model_folder(self, name: str) -> Path:
        from components.pipeline import stage_by_name

        spec = self.spec(name)
        try:
            return self.repo / stage_by_name(spec.stage).outs[0]
        except KeyError as exc:
            raise RegistryError(f"model {name!r}: {exc}") from exc

    def versions(self, name: str) -> list[str]:
        folder = self.records / name
        found = [p.stem for p in folder.glob("v*.json")] if folder.is_dir() else []
        return sorted(found, key=_version_key)

    def entry(self, name: str, version: str) -> dict:
        if version == "latest":
            versions = self.versions(name)
            if not versions:
                raise RegistryError(f"{name}: no version registered yet (lyra registry register {name})")
            version = versions[-1]
        path = self.records / name / f"{version}.json"
        if not path.is_file():
            raise RegistryError(f"{name}@{version}: no such version (registered: {', '.join(self.versions(name)) or 'none'})")
        return json.loads(path.read_text())

    def current_digest(self, name: str) -> str:
        """The digest of the deployable files the model's folder holds now (what registering would store)."""
        return describe(deployable_files(self.model_folder(name), self.spec(name).weights)).digest

    def find_by_digest(self, name: str, digest: str) -> dict | None:
        for version in self.versions(name):
            entry = self.entry(name, version)
            if entry["artifact"]["digest"] == digest:
                return entry
        return None

    def holder(self, name: str, stage: str) -> str | None:
        if not self.git.is_dir():
            return None
        return gitrecord.stage_holder(self.git, name, stage)

    def stages_of(self, name: str, version: str) -> list[str]:
        if not self.git.is_dir():
            return []
        return gitrecord.stage_history(self.git, name, version)

    def resolve(self, ref: str) -> Path:
        """"name@stage" or "name@vX.Y.Z" -> the stored folder of that version (checked against its digests)."""
        name, sep, which = ref.partition("@")
        if not sep or not which:
            raise RegistryError(f"{ref!r}: expected MODEL@STAGE or MODEL@VERSION, e.g. lyra@production")
        if which in STAGES:
            version = self.holder(name, which)
            if version is None:
                where = "" if self.git.is_dir() else f"; the registry repository {self.git} does not exist yet (lyra demo creates it)"
                raise RegistryError(f"{ref}: no version of {name} holds {which} (lyra promote {name} VERSION --to {which})"
                                    + where)
        else:
            version = which
        from components.registry.store import Artifact

        entry = self.entry(name, version)
        return self.store.verify(Artifact(entry["artifact"]["digest"], entry["artifact"]["files"]))

    def report_path(self, name: str, version: str) -> Path:
        return self.repo / self.config.store / "reports" / name / version / "index.html"

    # --- writing -------------------------------------------------------------------------
    def ensure_repository(self) -> None:
        """Create the registry repository on first write (git init, GTO's stage list, one commit)."""
        if not self.git.exists():
            gto_config = self.repo / ".gto"
            gitrecord.init_repo(self.git, gto_config.read_text() if gto_config.is_file() else None)
        gitrecord.check_repo(self.git)

    @contextmanager
    def locked(self):
        from filelock import FileLock

        self.ensure_repository()
        self.records.mkdir(parents=True, exist_ok=True)
        (self.repo / self.config.store).mkdir(parents=True, exist_ok=True)
        if self._lock is None:     # one instance: re-entrant, so registering parents inside a registration works
            # one lock per registry repository (inside its .git, so never committed): publishing from the
            # demo's registry into a team's holds both without the two contending for one file
            self._lock = FileLock(str(self.git / ".git" / "lyra-registry.lock"))
        with self._lock:
            if self._lock.lock_counter == 1:
                self._clear_stale_git_locks()
            yield

    def _clear_stale_git_locks(self) -> None:
        """A registry write killed inside a git command leaves git's own lock files (index.lock, a ref's
        .lock), and every later git command then fails. Only the holder of the registry's lock runs git in
        this repository, so while we hold it any such file is a dead process's: remove it."""
        dot_git = self.git / ".git"
        for stale in [dot_git / "index.lock", dot_git / "packed-refs.lock", dot_git / "HEAD.lock",
                      *(dot_git / "refs").rglob("*.lock")]:
            if stale.is_file():
                stale.unlink(missing_ok=True)

    def register(self, name: str, actor: str | None = None, *, with_report: bool = True) -> tuple[dict, bool]:
        """(entry, created): the version holding the model folder's current weights, registered if new."""
        actor = actor or gitrecord.default_actor(self.repo)
        spec = self.spec(name)
        with self.locked():
            artifact = self.store.put(self.model_folder(name), spec.weights)
            existing = self.find_by_digest(name, artifact.digest)
            if existing is not None:
                self._finish_record(existing, "registered", actor)    # a registration killed half-way: completed
                return existing, False
            self._check_parents_current(name, spec)
            parents = {p: self._parent_version(p, actor) for p in spec.parents}
            entry = self._describe(name, spec, artifact.to_json(), parents)
            entry.update(model=name, version=self._next_version(name), registered_at=now(), registered_by=actor)
            if with_report:
                from components.registry.report import write_report

                entry["report"] = os.path.relpath(write_report(self, entry), self.repo)
            self._record(entry, "registered", actor)
            return entry, True

    def _next_version(self, name: str) -> str:
        versions = self.versions(name)
        last = _version_key(versions[-1]) if versions else (0, 0, 0)
        return f"v{last[0]}.{last[1]}.{last[2] + 1}"

    def _record(self, entry: dict, event: str, actor: str, **audit) -> None:
        """Write the entry, then its audit line, the commit, the version tag and the candidate tag."""
        atomic_write_json(self.records / entry["model"] / f"{entry['version']}.json", entry)
        self._finish_record(entry, event, actor, **audit)

    def _finish_record(self, entry: dict, event: str, actor: str, **audit) -> None:
        """Everything after the entry file, each step skipped when it was done: a registration killed between
        them (the entry written, no tag yet) is completed by the next one instead of staying untagged."""
        name, version, digest = entry["model"], entry["version"], entry["artifact"]["digest"]
        if not any(a.get("model") == name and a.get("version") == version and a.get("event") in ("registered", "published")
                   for a in self.audit()):
            self.append_audit({"event": event, "model": name, "version": version, "actor": actor, "at": now(),
                               "artifact": digest, "checks": {k: v["passed"] for k, v in entry["checks"].items()},
                               **audit})
        ref = gitrecord.commit_paths(self.git, [self.config.records], f"registry: {name} {version}", actor)
        if not gitrecord.has_tag(self.git, f"{name}@{version}"):
            gitrecord.register_version(self.git, name, version, ref, f"{name} {version}: weights {digest[:12]}", actor)
        if "candidate" not in gitrecord.stage_history(self.git, name, version):
            gitrecord.assign_stage(self.git, name, version, "candidate", json.dumps({"decision": event, "actor": actor}),
                                   actor)

    def publish_into(self, target: "Registry", models: list[str] | None = None, actor: str | None = None) -> list[dict]:
        """Record this registry's versions in another registry repository (e.g. the demo's into the team's),
        each as a new candidate there, numbered in the target's sequence; versions whose weights the target
        already holds are skipped. Parents first, so lineage names the target's versions. Stage assignments
        are not copied: promotion in the target goes through its own gates."""
        actor = actor or gitrecord.default_actor(self.repo)
        published = []
        with target.locked():
            for name in models or list(self.config.models):
                for version in self.versions(name):
                    entry = self.entry(name, version)          # read from its file: a copy of its own
                    if target.find_by_digest(name, entry["artifact"]["digest"]) is not None:
                        continue
                    for parent, recorded in entry["lineage"]["parents"].items():
                        found = target.find_by_digest(parent, recorded["digest"])
                        recorded["version"] = found["version"] if found else None
                    entry.update(version=target._next_version(name), registered_at=now(), registered_by=actor,
                                 published_from={"repository": os.fspath(self.git), "version": version,
                                                 "registered_at": entry.get("registered_at")})
                    target._record(entry, "published", actor, source_version=version)
                    published.append({"model": name, "version": entry["version"], "source_version": version})
        return published

    def _check_parents_current(self, name: str, spec: ModelSpec) -> None:
        """The parent folders must still be the ones the model was built from (dvc.lock: the model stage's
        dep md5 = the parent stage's out md5), or the recorded parent versions would be wrong."""
        from components.pipeline import stage_by_name

        lock = self._lock_stages()
        deps = {d["path"]: d.get("md5") for d in lock.get(spec.stage, {}).get("deps", [])}
        for parent in spec.parents:
            parent_stage = self.spec(parent).stage
            folder = stage_by_name(parent_stage).outs[0]
            outs = {o["path"]: o.get("md5") for o in lock.get(parent_stage, {}).get("outs", [])}
            if deps.get(folder) and outs.get(folder) and deps[folder] != outs[folder]:
                raise RegistryError(f"{name}: built from a {folder} ({deps[folder]}) that has since been replaced "
                                    f"({outs[folder]}); re-run stage {spec.stage} before registering it")

    def _lock_stages(self) -> dict:
        lock_file = self.repo / "dvc.lock"
        return (yaml.safe_load(lock_file.read_text()) or {}).get("stages", {}) if lock_file.is_file() else {}

    def _parent_version(self, parent: str, actor: str) -> dict:
        digest = self.current_digest(parent)
        found = self.find_by_digest(parent, digest)
        if found is None:
            found, _ = self.register(parent, actor)
        return {"version": found["version"], "digest": digest}

    def _describe(self, name: str, spec: ModelSpec, artifact: dict, parents: dict) -> dict:
        from components.pipeline import stage_by_name
        from components.registry.checks import evaluate, required_checks

        folder = self.model_folder(name)
        lineage_file = folder / "lineage.json"
        if not lineage_file.is_file():
            # every stage writes it with its output (StageRun.output): without it nothing says what made these weights
            raise RegistryError(f"{lineage_file}: missing, so nothing records what {name}'s weights were trained from; "
                                f"re-run stage {spec.stage} (lyra demo) before registering them")
        trained = json.loads(lineage_file.read_text())
        stages = [spec.stage, *spec.evaluations]
        metrics = {}
        for stage_name in stages:
            path = self.repo / stage_by_name(stage_name).metrics_path
            if path.is_file():
                metrics[stage_name] = json.loads(path.read_text())
        data = self._data_versions(stages)
        entry = {
            "artifact": artifact,
            "lineage": {
                "stage": spec.stage,
                "folder": os.path.relpath(folder, self.repo),
                "git_revision": gitrecord.head_or_none(self.repo),
                "trained_at_git_revision": trained.get("git_revision"),
                "code_version": trained.get("code_version"),
                "data": data,
                "params": trained.get("params"),
                "parents": parents,
                "environment": trained.get("environment"),
            },
            "metrics": metrics,
            # the gates its stages declare, whatever the config lists: no version is promoted without them
            "checks": evaluate(tuple(dict.fromkeys((*required_checks(spec.stage, spec.evaluations), *spec.checks))),
                               self.repo, self.profile),
        }
        # two versions are compared only on the same held-out data (and the same judges, e.g. ORAQL)
        own = set(stage_by_name(spec.stage).outs)
        paths = spec.held_out if spec.held_out is not None else tuple(sorted(p for p in data["deps"] if p not in own))
        held_out = {p: data["deps"].get(p) for p in paths}
        entry["held_out"] = {"data": held_out,
                             "digest": hashlib.sha256(json.dumps(held_out, sort_keys=True).encode()).hexdigest()[:16]}
        return entry

    def _data_versions(self, stages: list[str]) -> dict:
        """Data deps and outs of the stages as dvc.lock records them (md5 of each path); code deps left out."""
        from components.pipeline import stage_by_name

        lock = self._lock_stages()
        deps, outs = {}, {}
        for name in stages:
            stage = stage_by_name(name)
            recorded = lock.get(name, {})
            for d in recorded.get("deps", []):
                if d["path"] in stage.deps:
                    deps[d["path"]] = d.get("md5")
            for o in recorded.get("outs", []):
                outs[o["path"]] = o.get("md5")
            for p in stage.deps:
                if deps.get(p) is None:     # not recorded by DVC (a stage run by hand): digest the data itself
                    deps[p] = "tree:" + tree_digest(self.repo / p)
        return {"deps": deps, "outs": outs, "dvc_lock": bool(lock)}

    def append_audit(self, record: dict) -> None:
        """Add one line to the audit log: under the registry's lock (two writers never lose a line) and by an
        atomic rewrite (a crash never leaves half a line)."""
        with self.locked():
            path = self.records / "audit.jsonl"
            lines = path.read_text() if path.is_file() else ""
            atomic_write_text(path, lines + json.dumps(record, sort_keys=True, default=str) + "\n")

    def audit(self) -> list[dict]:
        path = self.records / "audit.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def resolve_model_argument(value: str, repo: str | os.PathLike = ".") -> str:
    """A command's model argument: a folder as given, or "name@stage" / "name@vX.Y.Z" resolved in the
    registry of `repo` to the stored weights of that version."""
    if "@" not in value or Path(value).exists():
        return value
    return os.fspath(Registry(repo).resolve(value))
