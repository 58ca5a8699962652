"""One error base class, caught once: `lyra` turns any LyraError into `lyra <command> <action>: message`, exit 2."""

import ast
import importlib
from pathlib import Path

import pytest

from components import cli
from components.common.errors import LyraError

REPO = Path(__file__).resolve().parents[2]


def _refuse(args):
    raise LyraError("data/x.wav: too short")


def _open_missing_file(args):
    with open("/nonexistent/lyra/file"):
        pass


def _bug(args):
    raise KeyError("no such key")


def configure(parser):
    """`lyra fake refuse|missing|bug`: a command whose actions raise each kind of error, registered in
    COMMANDS by the fixture below so that the real `lyra` entry point handles them."""
    sub = parser.add_subparsers(dest="action", required=True)
    for name, action in (("refuse", _refuse), ("missing", _open_missing_file), ("bug", _bug)):
        sub.add_parser(name).set_defaults(func=action)


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
