"""`lyra registry ...` and `lyra promote ...`: the registry from the shell.

    lyra registry register lyra                  # the current data/models/lyra as a new candidate version
    lyra registry list [lyra]                    # versions, the stages they hold, their reports
    lyra registry show lyra v0.0.2               # one entry (lineage, metrics, checks)
    lyra registry audit                          # every decision
    lyra promote lyra v0.0.2 --to staging --reason "beats v0.0.1 on valid loss"
    lyra promote lyra v0.0.2 --to production --reason "..." --force --actor alice
    lyra registry publish --into ../team-registry   # record this registry's versions in the team's registry

The record (entries, audit log, GTO tags) lives in the registry repository: params.yaml `registry.repo`
(default `.lyra/registry`, a git repository of its own that the project ignores), $LYRA_REGISTRY_REPO,
or --registry-repo. The project's own checkout is never committed to unless that is where it points.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from components.registry.config import STAGES


def _registry(args):
    from components.registry.registry import Registry

    return Registry(Path(args.repo), profile=args.profile, git=args.registry_repo)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", default=".", help="the project (params.yaml, dvc.lock, data/models, the artifact store)")
    parser.add_argument("--registry-repo", default=None, metavar="PATH",
                        help="the registry's git repository (default: $LYRA_REGISTRY_REPO, else params.yaml "
                             "registry.repo, i.e. .lyra/registry)")
    parser.add_argument("--profile", default=None, help="params profile whose gate settings apply")


def configure_registry(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    reg = sub.add_parser("register", help="register the model folder's current weights (a no-op if already registered)")
    reg.add_argument("model")
    reg.add_argument("--actor", default=None, help="who registers (default: git user.name)")
    _common(reg)
    reg.set_defaults(func=_cmd_register)
    lst = sub.add_parser("list", help="versions and the stages they hold")
    lst.add_argument("model", nargs="?")
    _common(lst)
    lst.set_defaults(func=_cmd_list)
    show = sub.add_parser("show", help="one version's entry as JSON")
    show.add_argument("model")
    show.add_argument("version", help="vX.Y.Z, latest, or a stage name")
    _common(show)
    show.set_defaults(func=_cmd_show)
    audit = sub.add_parser("audit", help="every registration and promotion decision")
    _common(audit)
    audit.set_defaults(func=_cmd_audit)
    pub = sub.add_parser("publish", help="record this registry's versions in another registry repository (each a "
                                         "new candidate there; promote them there through its gates)")
    pub.add_argument("models", nargs="*", help="models to publish (default: all)")
    pub.add_argument("--into", required=True, metavar="PATH",
                     help="the target registry's git repository (a clone of the team's; '.' for this project)")
    pub.add_argument("--actor", default=None, help="who publishes (default: git user.name)")
    _common(pub)
    pub.set_defaults(func=_cmd_publish)


def configure_promote(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model")
    parser.add_argument("version", help="vX.Y.Z or latest")
    parser.add_argument("--to", dest="to_stage", required=True, choices=STAGES[1:])
    parser.add_argument("--reason", required=True, help="why (recorded in the audit log and the stage tag)")
    parser.add_argument("--force", action="store_true", help="promote even if gates fail (needs --actor)")
    parser.add_argument("--actor", default=None, help="who decides (default: git user.name; required with --force)")
    _common(parser)
    parser.set_defaults(func=_cmd_promote)


def _run(fn):
    # registry errors reach components/cli.py's one handler; a KeyError here is an unknown model or version
    try:
        return fn()
    except KeyError as exc:
        print(f"lyra: {exc}", file=sys.stderr)
        return 2


def _cmd_register(args) -> int:
    def go():
        entry, created = _registry(args).register(args.model, args.actor)
        state = "registered" if created else "already registered"
        failed = [c for c, r in entry["checks"].items() if not r["passed"]]
        print(f"{args.model} {entry['version']} {state} (weights {entry['artifact']['digest'][:12]}, report "
              f"{entry.get('report')}){'; failed checks: ' + ', '.join(failed) if failed else ''}")
        return 0
    return _run(go)


def _cmd_list(args) -> int:
    def go():
        reg = _registry(args)
        for name in [args.model] if args.model else list(reg.config.models):
            holders = {s: reg.holder(name, s) for s in STAGES}
            for version in reg.versions(name):
                entry = reg.entry(name, version)
                stages = ",".join(s for s, v in holders.items() if v == version) or "-"
                print(f"{name:16s} {version:9s} {stages:30s} {entry['artifact']['digest'][:12]}  {entry.get('report', '')}")
        return 0
    return _run(go)


def _cmd_show(args) -> int:
    def go():
        reg = _registry(args)
        version = reg.holder(args.model, args.version) if args.version in STAGES else args.version
        print(json.dumps(reg.entry(args.model, version or "none"), indent=1))
        return 0
    return _run(go)


def _cmd_audit(args) -> int:
    def go():
        for record in _registry(args).audit():
            print(json.dumps(record, sort_keys=True))
        return 0
    return _run(go)


def _cmd_publish(args) -> int:
    def go():
        from components.registry.registry import Registry, RegistryError

        source = _registry(args)
        target = Registry(Path(args.repo), profile=args.profile, git=Path(args.into).resolve())
        if target.git == source.git:
            raise RegistryError(f"--into {args.into} is the registry being published")
        published = source.publish_into(target, args.models or None, args.actor)
        for row in published:
            print(f"{row['model']} {row['source_version']} -> {target.git}: {row['version']} (candidate)")
        print(f"{len(published)} version(s) published" + ("" if published else ": the target holds them all"))
        return 0
    return _run(go)


def _cmd_promote(args) -> int:
    def go():
        from components.registry.promote import promote

        decision = promote(_registry(args), args.model, args.version, args.to_stage, args.reason,
                           force=args.force, actor=args.actor)
        print(decision.summary())
        return 1 if decision.outcome == "refused" else 0
    return _run(go)
