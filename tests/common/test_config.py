import pytest
import yaml

from components.config import ConfigError, StageConfig, load_stage_config, parse_overrides


class Optim(StageConfig):
    lr: float = 1e-3


class Demo(StageConfig):
    steps: int = 10
    name: str = "x"
    optim: Optim = Optim()


@pytest.fixture()
def params(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({
        "profile": "tiny",
        "tiny": {"demo": {"steps": 20, "optim": {"lr": 0.01}}},
        "gpu": {"demo": {"steps": 2000}},
    }))
    return path


def test_profiles_merge_on_top_of_tiny(params):
    tiny = load_stage_config("demo", Demo, params_path=params)
    gpu = load_stage_config("demo", Demo, params_path=params, profile="gpu")
    assert (tiny.steps, tiny.optim.lr) == (20, 0.01)
    assert (gpu.steps, gpu.optim.lr) == (2000, 0.01)   # lr inherited from tiny


def test_overrides_are_typed_and_nested(params):
    cfg = load_stage_config("demo", Demo, params_path=params, overrides=["optim.lr=3e-4", "name=abc"])
    assert cfg.optim.lr == pytest.approx(3e-4) and cfg.name == "abc"
    assert parse_overrides(["a.b=1", "c=[1, 2]"]) == {"a": {"b": 1}, "c": [1, 2]}


def test_env_selects_profile(params, monkeypatch):
    monkeypatch.setenv("LYRA_PROFILE", "gpu")
    assert load_stage_config("demo", Demo, params_path=params).steps == 2000


@pytest.mark.parametrize("bad", [["stpes=3"], ["steps=many"], ["noequals"]])
def test_bad_values_are_clear_errors(params, bad):
    with pytest.raises(ConfigError):
        load_stage_config("demo", Demo, params_path=params, overrides=bad)


def test_unknown_profile_is_an_error(params):
    with pytest.raises(ConfigError, match="unknown profile"):
        load_stage_config("demo", Demo, params_path=params, profile="huge")
