"""`lyra verify`: the checks of orchestration/integrity.py over the whole pipeline, with `dvc status` deciding
which stages are up to date (and so have their outputs' lineage compared with their inputs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from orchestration.dvc import DvcResource
from orchestration.integrity import IntegrityError, check_lineage, verify_record


def configure_verify(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stages", nargs="*", help="stages whose outputs' lineage to compare with their inputs (default: "
                                                  "every stage dvc.lock records); the cache check covers everything")
    parser.add_argument("--repo", default=".", help="the project (dvc.lock, .dvc/cache, data/)")
    parser.set_defaults(func=_cmd_verify)


def _cmd_verify(args: argparse.Namespace) -> int:
    lock, objects = verify_record(args.repo)      # every cached object dvc.lock records, before `dvc status`
    recorded = list((lock.get("stages") or {}))
    unknown = [s for s in args.stages if s not in recorded]
    if unknown:
        raise IntegrityError(f"{Path(args.repo) / 'dvc.lock'}: records no stage {', '.join(unknown)} "
                             f"(it records: {', '.join(recorded) or 'none'})")
    stale = DvcResource(repo=str(Path(args.repo).resolve())).stale_stages(verify=False) if lock else {}
    stages = args.stages or recorded
    compared = sum(check_lineage(args.repo, lock, stage) for stage in stages if stage not in stale)
    print(f"dvc.lock readable; {objects} cached objects hash to their names; {compared} inputs of up-to-date stages "
          f"match their outputs' lineage; {len(stale)} stages out of date (dvc status): {', '.join(stale) or 'none'}")
    return 0
