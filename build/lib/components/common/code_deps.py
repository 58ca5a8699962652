"""The source files a stage's result depends on: the modules its command actually imports.

    `lyra lm train ...` --argparse--> handler components.lyra.cli:_train
        the handler's own imports + its module's top-level imports
        --> every project module those import, transitively (imports inside functions too:
            the code imports lazily, so a function-level import is a real dependency)
        --> + each module's enclosing packages' __init__.py (run on import)

A stage then depends on `components/lyra/train.py` and what it imports, not on the whole
`components/lyra` folder: editing `lyra/sample.py` does not retrain Lyra, while editing
`lyra/model.py` does. Modules named by configuration ("package.module:function" strings in the
stage's argv or params: a reward model adapter, a judge) are roots too.

Static, by reading the source (ast), so it needs no import of torch and costs milliseconds.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Iterable

from components.common.lineage import REPO_ROOT

PACKAGE = "components"
# The stage table and the `lyra` dispatcher describe the pipeline; they compute no stage's result
# (lineage.py reaches the table to look up a stage's code). Editing them, e.g. adding a stage,
# must not make every stage stale.
PIPELINE_MODULES = frozenset({f"{PACKAGE}.pipeline", f"{PACKAGE}.cli"})
REFERENCE = re.compile(rf"^({PACKAGE}(?:\.\w+)+):\w+$")   # "components.oraql.score:reward_factory"


def module_file(module: str, root: Path = REPO_ROOT) -> Path | None:
    """components.a.b -> components/a/b.py or components/a/b/__init__.py (None: not a project module)."""
    if module.split(".")[0] != PACKAGE:
        return None
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imported_modules(nodes: Iterable[ast.AST], module: str, is_package: bool, root: Path = REPO_ROOT) -> set[str]:
    """Project modules imported anywhere inside `nodes` (`from pkg import name`: pkg.name when it is a module)."""
    found: set[str] = set()
    for top in nodes:
        for node in ast.walk(top):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node, module, is_package)
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names if module_file(f"{base}.{alias.name}", root))
    return {m for m in found if module_file(m, root)}


def _with_packages(module: str) -> list[str]:
    """components.a.b -> [components, components.a, components.a.b]: importing b runs every __init__ above it."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def closure(roots: Iterable[str], opaque: Iterable[str] = (), root: Path = REPO_ROOT) -> set[str]:
    """Every project module reachable from `roots` (whole modules) by imports; an `opaque` module is
    included but not followed (a CLI module: only its handler's imports count, see handler_roots)."""
    seen: set[str] = set()
    opaque = set(opaque)
    todo = [m for r in roots for m in _with_packages(r) if module_file(m, root) and m not in PIPELINE_MODULES]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        if module in opaque:
            continue
        path = module_file(module, root)
        for found in imported_modules([_parse(path)], module, path.name == "__init__.py", root):
            todo.extend(m for m in _with_packages(found)
                        if m not in seen and m not in PIPELINE_MODULES and module_file(m, root))
    return seen


def handler_roots(module: str, function: str, root: Path = REPO_ROOT) -> set[str]:
    """The modules a CLI handler needs: its module (and packages), its module's top-level imports and its own.
    Follow them with closure(..., opaque=[module]): the module's other handlers are other stages' code."""
    path = module_file(module, root)
    if path is None:
        raise ValueError(f"{module} is not a module of the {PACKAGE} package")
    tree = _parse(path)
    top_level = [n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    handler = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == function]
    if not handler:
        raise ValueError(f"{module} defines no function {function!r}")
    return {module} | imported_modules(top_level + handler, module, path.name == "__init__.py", root)


def referenced_modules(values) -> set[str]:
    """Modules named as "components.x.y:function" anywhere in nested argv/params values."""
    if isinstance(values, dict):
        return set().union(*(referenced_modules(v) for v in values.values())) if values else set()
    if isinstance(values, (list, tuple)):
        return set().union(*(referenced_modules(v) for v in values)) if values else set()
    match = REFERENCE.match(values) if isinstance(values, str) else None
    return {match.group(1)} if match else set()


def source_files(modules: Iterable[str], root: Path = REPO_ROOT) -> list[str]:
    """Repository-relative paths of the modules' files, sorted."""
    return sorted(module_file(m, root).relative_to(root).as_posix() for m in modules)
