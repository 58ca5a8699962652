"""`lyra@production` resolves to the promoted version's stored weights, whatever the model folder holds now."""

import torch

from components.registry.promote import promote
from components.registry.registry import resolve_model_argument


def promote_to_production(reg, name: str, version: str) -> None:
    for stage in ("staging", "production"):
        assert promote(reg, name, version, stage, "tests", actor="ci").outcome == "promoted"


def test_lyra_at_production_loads_the_promoted_artifact(project, monkeypatch):
    from components.lyra.generation import load_model

    project.train_codec(seed=0, valid_mel_distance=0.9)
    first = project.train_lyra(seed=0)
    promoted = {k: v.clone() for k, v in load_model(first, device="cpu").state_dict().items()}
    reg = project.registry()
    reg.register("lyra")
    promote_to_production(reg, "omnicodec", "v0.0.1")
    promote_to_production(reg, "lyra", "v0.0.1")

    project.train_lyra(seed=1)                                  # the folder moves on; production does not
    reg.register("lyra")
    monkeypatch.chdir(project.root)
    path = resolve_model_argument("lyra@production")
    assert path == str(reg.resolve("lyra@v0.0.1"))
    loaded = load_model(path, device="cpu").state_dict()
    assert loaded.keys() == promoted.keys() and all(torch.equal(loaded[k], promoted[k]) for k in promoted)
    newer = load_model(reg.resolve("lyra@v0.0.2"), device="cpu").state_dict()
    assert not all(torch.equal(newer[k], promoted[k]) for k in promoted)
    assert resolve_model_argument("data/models/lyra") == "data/models/lyra"       # plain folders pass through


def test_generate_resolves_model_and_codec_stages(project, monkeypatch, capsys):
    """`lyra generate --model lyra@production --codec omnicodec@production` opens the stored versions."""
    from components.cli import main as lyra
    from components.omnicodec import decoding as codec_io
    from components.generate import cli as generate
    from components.lyra import generation

    project.train_codec(seed=0, valid_mel_distance=0.9)
    project.train_lyra(seed=0)
    reg = project.registry()
    reg.register("lyra")
    promote_to_production(reg, "omnicodec", "v0.0.1")
    promote_to_production(reg, "lyra", "v0.0.1")
    monkeypatch.chdir(project.root)
    opened = {}
    real_load = generation.load_model

    def load_model(path, **kw):
        opened["model"] = str(path)
        return real_load(path, device="cpu")

    def load_codec(path, device="cpu"):
        opened["codec"] = str(path)
        raise generate.GenerationError("stop here: the codec path is what this test checks")

    monkeypatch.setattr(generation, "load_model", load_model)
    monkeypatch.setattr(codec_io, "load_codec", load_codec)
    code = lyra(["generate", "a chorale", "--model", "lyra@production", "--codec", "omnicodec@production",
                 "--out", str(project.root / "x.wav")])
    assert code == 2 and "stop here" in capsys.readouterr().err
    assert opened == {"model": str(reg.resolve("lyra@production")), "codec": str(reg.resolve("omnicodec@production"))}

    assert lyra(["generate", "a chorale", "--model", "lyra@staging-ish", "--out", str(project.root / "y.wav")]) == 2
    assert "no such version" in capsys.readouterr().err
