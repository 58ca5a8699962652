"""One error base class, caught once: `lyra` turns any LyraError into `lyra <command> <action>: message`, exit 2."""

import ast
import importlib
from pathlib import Path

import pytest

from components import cli
from components.common.errors import LyraError

REPO = Path(__file__).resolve().parents[2]


def configure(parser):
    """A stand-in `lyra fake <action>` command (COMMANDS is pointed at this module below)."""
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("refuse").set_defaults(func=lambda args: (_ for _ in ()).throw(LyraError("data/x.wav: too short")))
    sub.add_parser("missing").set_defaults(func=lambda args: open("/nonexistent/lyra/file"))
    sub.add_parser("bug").set_defaults(func=lambda args: {}["no such key"])


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "fake", (__name__, "a test command"))


def test_a_user_error_is_a_message_and_exit_code_2(fake, capsys):
    assert cli.main(["fake", "refuse"]) == 2
    assert capsys.readouterr().err.strip() == "lyra fake refuse: data/x.wav: too short"
    assert cli.main(["fake", "missing"]) == 2
    assert "lyra fake missing: [Errno 2] No such file or directory: '/nonexistent/lyra/file'" in capsys.readouterr().err


def test_a_bug_keeps_its_traceback(fake):
    with pytest.raises(KeyError):
        cli.main(["fake", "bug"])


def test_every_error_class_derives_from_the_one_base():
    """Classes named *Error or *Mismatch in components/ and orchestration/ are LyraErrors."""
    found = []
    for package in ("components", "orchestration"):
        for path in (REPO / package).rglob("*.py"):
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.ClassDef) and node.name.endswith(("Error", "Mismatch")):
                    module = ".".join(path.relative_to(REPO).with_suffix("").parts)
                    found.append(getattr(importlib.import_module(module), node.name))
    assert len(found) >= 20
    assert [c.__qualname__ for c in found if not issubclass(c, LyraError)] == []
