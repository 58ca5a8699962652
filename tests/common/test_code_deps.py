"""A stage depends on the modules its command imports, not on whole folders."""

from pathlib import Path

from components.common import code_deps
from components.pipeline import stage_by_name


def test_a_stage_depends_on_what_it_imports_and_not_on_its_neighbours():
    pretrain = set(stage_by_name("lyra_pretrain").code_paths)
    assert {"components/lyra/train.py", "components/lyra/model.py", "components/tokens/dataset.py",
            "components/common/lineage.py", "components/config.py", "components/lyra/cli.py"} <= pretrain
    assert "components/lyra/sample.py" not in pretrain          # the sampling stage's code: not a reason to retrain
    assert "components/lyra/sample.py" in stage_by_name("lyra_samples").code_paths
    assert "components/omnicodec/evaluate.py" not in stage_by_name("omnicodec").code_paths
    assert "components/omnicodec/evaluate.py" in stage_by_name("omnicodec_eval").code_paths


def test_a_module_named_in_params_is_a_dependency():
    # rlaif.reward is "components.oraql.score:reward_factory": ORAQL's adapter is loaded by name
    assert "components/oraql/score.py" in stage_by_name("lyra_rlaif").code_paths
    assert code_deps.referenced_modules({"a": ["x", "components.oraql.score:reward_factory"], "b": 3}) == \
        {"components.oraql.score"}


def write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)


def test_function_level_relative_and_package_imports_are_followed(tmp_path):
    write(tmp_path, "components/__init__.py", "")
    write(tmp_path, "components/a/__init__.py", "from components.a import init_dep\n")
    write(tmp_path, "components/a/init_dep.py", "")
    write(tmp_path, "components/a/cli.py", "import os\nfrom components import shared\n"
                                           "def _one(args):\n    from components.a.one import f\n"
                                           "def _two(args):\n    from components.a import two\n")
    write(tmp_path, "components/a/one.py", "def f():\n    from .helper import g\n")
    write(tmp_path, "components/a/helper.py", "")
    write(tmp_path, "components/a/two.py", "")
    write(tmp_path, "components/shared.py", "")
    roots = code_deps.handler_roots("components.a.cli", "_one", root=tmp_path)
    files = code_deps.source_files(code_deps.closure(roots, opaque=["components.a.cli"], root=tmp_path), root=tmp_path)
    assert files == ["components/__init__.py", "components/a/__init__.py", "components/a/cli.py",
                     "components/a/helper.py", "components/a/init_dep.py", "components/a/one.py",
                     "components/shared.py"]                     # not two.py: another handler's code
