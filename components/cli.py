"""`lyra` — one command per lifecycle stage.

Subcommands are imported only when used, so `lyra --help` stays fast.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import sys
from pathlib import Path

# name -> (module that defines `configure(parser)`, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "corpus": ("components.corpus.cli", "build the offline demo corpus (music21 scores rendered with a GM SoundFont)"),
    "curate": ("components.curation.cli", "curate a folder of audio into clips + manifest + quarantine"),
    "caption": ("components.captioning.cli", "tag and caption curated clips, embed the captions"),
    "codec": ("components.omnicodec.cli", "train / evaluate OmniCodec, encode and decode audio files"),
    "tokens": ("components.tokens.cli", "encode the curated corpus into memory-mappable token shards"),
    "judge": ("components.judge.cli", "train the conditioning judge: instrument and style from real decoded audio"),
    "lm": ("components.lyra.cli", "pretrain the Lyra text-to-music transformer"),
    "rlaif": ("components.rlaif.cli", "post-train Lyra with feedback from a reward model (GRPO through TRL)"),
    "influence": ("components.influence.cli", "fine-tune Lyra on reference songs (LoRA + a reference conditioner), evaluate"),
    "generate": ("components.generate.cli", "generate music from a text prompt (and/or a reference song) with Lyra"),
    "serve": ("components.serving.cli", "serve the promoted model over HTTP: generation, batching, the listening room"),
    "listen": ("components.listening.cli", "what listeners said in the listening room: tally, export to ORAQL's tables"),
    "oraql": ("components.oraql.cli", "train / evaluate ORAQL, the music-quality model; best-of-n generation"),
    "evaluate": ("components.audit.cli", "the independent evaluator (musicnn, trained elsewhere): audit ORAQL against it"),
    "score": ("components.oraql.score", "score audio files or folders with ORAQL (one row per file, JSON or CSV)"),
    "registry": ("components.registry.cli", "the model registry: register versions, list them, show lineage, audit log"),
    "promote": ("components.registry.cli", "promote a model version to staging / production through its gates"),
    "stability": ("components.registry.stability", "run a stage under several seeds and thread counts: does its gate's verdict flip?"),
    "scaling": ("components.scaling.cli", "scaling laws: sweep small Lyra runs, fit L(N, D), recommend a size for a FLOP budget"),
    "pipeline": ("components.pipeline", "the stage graph: list stages, write dvc.yaml"),
    "verify": ("orchestration.verify", "check dvc.lock, the DVC cache and up-to-date stages' lineage before building on them"),
    "demo": ("orchestration.demo", "run the whole lifecycle through Dagster (tiny profile, SQLite, local DVC remote)"),
    "ui": ("orchestration.demo", "open the Dagster UI on the same assets and instance"),
}


def commands() -> dict[str, tuple[str, str]]:
    """COMMANDS, plus every package with a cli.py that none of them names, as `lyra <package>` (help: the first
    line of its docstring): a new stage's package brings its own command."""
    named = {module for module, _ in COMMANDS.values()}
    found = dict(COMMANDS)
    for cli in sorted(Path(__file__).parent.glob("*/cli.py")):
        module = f"components.{cli.parent.name}.cli"
        if module not in named and cli.parent.name not in found:
            doc = ast.get_docstring(ast.parse(cli.read_text())) or ""
            found[cli.parent.name] = (module, doc.strip().splitlines()[0] if doc.strip() else "")
    return found


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows an option's default when it has a meaningful one (not None/False/empty)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "%(default)" in text or default in (None, False, [], argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class LyraArgumentParser(argparse.ArgumentParser):
    """Every `lyra` parser and sub-parser formats help the same way."""

    def __init__(self, *args, **kwargs):
        kwargs["formatter_class"] = _HelpFormatter
        super().__init__(*args, **kwargs)


def _top_parser() -> argparse.ArgumentParser:
    parser = LyraArgumentParser(
        prog="lyra",
        description="The Lyra platform: curation, OmniCodec, token shards and the Lyra music LM, stage by stage.",
        epilog="Run `lyra <command> --help` for a command's options.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, (_, help_text) in commands().items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def build_command_parser(name: str) -> argparse.ArgumentParser:
    module_name, help_text = COMMANDS[name] if name in COMMANDS else commands()[name]
    module = importlib.import_module(module_name)
    parser = LyraArgumentParser(prog=f"lyra {name}", description=help_text)
    configure = getattr(module, f"configure_{name}", None) or module.configure
    configure(parser)
    return parser


def storage_error(exc: OSError) -> str:
    """One line for a full disk or a failing device: what failed, where, how much room is left, what to do.
    Outputs are written beside their place and swapped in whole (components/common/atomic.py), so the
    previous output is still there."""
    import os
    import shutil

    # a copy (shutil's sendfile path) or a rename names its source first and the destination second: the
    # destination is what was being written
    written = exc.filename2 or exc.filename
    where = written or "its output"
    free = ""
    probe = Path(written) if written else None
    while probe is not None and not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe is not None:
        free = f"; {shutil.disk_usage(probe).free / 1e6:.1f} MB free on that file system"
    return (f"{exc.strerror or os.strerror(exc.errno)} while writing {where}{free}. Nothing was replaced: the "
            "previous output (if any) is intact; free space (or point --out elsewhere) and rerun")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or (argv[0] not in COMMANDS and argv[0] not in commands()):
        parser = _top_parser()
        if argv and argv[0] not in ("-h", "--help"):
            parser.error(f"unknown command {argv[0]!r}")
        parser.print_help()
        return 0 if argv else 2
    parser = build_command_parser(argv[0])
    args = parser.parse_args(argv[1:])
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    from components.common.errors import LyraError

    try:
        result = args.func(args)
    except (LyraError, FileNotFoundError) as exc:
        # the one place a user-facing error becomes a message and exit code 2 (components/common/errors.py)
        action = getattr(args, "action", None)
        print(f"lyra {argv[0]}{f' {action}' if isinstance(action, str) else ''}: {exc}", file=sys.stderr, flush=True)
        return 2
    except OSError as exc:
        from components.common.atomic import STORAGE_ERRORS

        if exc.errno not in STORAGE_ERRORS:
            raise
        print(f"lyra {argv[0]}: {storage_error(exc)}", file=sys.stderr, flush=True)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
