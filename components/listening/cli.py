"""`lyra listen`: what listeners said in the listening room (`lyra serve`).

    lyra listen tally [--candidate lyra@v0.0.4 --holder lyra@v0.0.3]   counts, preference interval, P(liked) per best-of
    lyra listen export --out DIR        pairwise.csv + ratings.csv + audio, for `lyra oraql train --set pairwise=DIR/pairwise.csv`
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    from components.config import add_config_arguments

    sub = parser.add_subparsers(dest="action", required=True)
    tally = sub.add_parser("tally", help="the judgements so far: counts, preference with its interval, P(liked) per best-of")
    tally.add_argument("--candidate", default=None, help="version label, e.g. lyra@v0.0.4 (with --holder)")
    tally.add_argument("--holder", default=None, help="version label, e.g. lyra@v0.0.3")
    export = sub.add_parser("export", help="write the judgements as ORAQL's import tables (pairwise.csv, ratings.csv)")
    export.add_argument("--out", required=True, help="folder for the tables and the audio they name")
    for p in (tally, export):
        add_config_arguments(p)
    parser.set_defaults(func=main)


def main(args) -> int:
    from components.config import config_from_args
    from components.listening.config import ListeningConfig
    from components.listening.export import export_tables
    from components.listening.statistics import liked_by_best_of, liked_ratio, preference
    from components.listening.votes import VoteStore

    cfg = config_from_args("listening", ListeningConfig, args)
    judgements = VoteStore.open(cfg.database).judgements()
    if args.action == "export":
        written = export_tables(judgements, Path(cfg.audio_dir), Path(args.out))
        print(f"wrote {', '.join(f'{k} ({v} rows)' for k, v in written.items()) or 'nothing (no judgements yet)'} "
              f"in {args.out}")
        return 0
    arms = liked_by_best_of(judgements)
    out = {"judgements": len(judgements), "liked_by_best_of": arms, "liked_ratio": liked_ratio(arms)}
    if args.candidate and args.holder:
        out["candidate_preferred"] = preference(judgements, args.candidate, args.holder).to_json()
    print(json.dumps(out, indent=2))
    return 0
