"""Registration: deployable weights only, content-addressed, idempotent, with lineage and GTO tags."""

import json

import pytest

from components.registry.store import ArtifactError
from tests.registry.conftest import CODEC_EVAL


def test_a_version_holds_the_deployable_weights_not_the_training_state(project):
    folder = project.train_codec(seed=0, valid_mel_distance=0.9)
    reg = project.registry()
    entry, created = reg.register("omnicodec", actor="alice")

    assert created and entry["version"] == "v0.0.1"
    assert sorted(entry["artifact"]["files"]) == ["config.json", "model.safetensors"]   # no checkpoints/last.pt
    stored = reg.resolve("omnicodec@v0.0.1")
    assert stored != folder and stored.parent == reg.store.root
    assert (stored / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()
    training_state = (folder / "checkpoints" / "last.pt").stat().st_size
    assert sum(f["bytes"] for f in entry["artifact"]["files"].values()) < sum(
        p.stat().st_size for p in folder.rglob("*") if p.is_file()) - training_state + 1

    # lineage: the code and data it came from, its checks, the metrics it was judged on
    assert entry["lineage"]["git_revision"] == project.git("rev-parse", "HEAD~1").strip()   # before the entry commit
    assert entry["lineage"]["data"]["deps"]["data/curated"].startswith("tree:")          # no dvc.lock here
    assert entry["checks"]["codec_gate"]["passed"] is True
    assert entry["metrics"]["omnicodec"]["valid_mel_distance"] == 0.9
    assert entry["metrics"]["omnicodec_eval"]["mel_distance"] == CODEC_EVAL["mel_distance"]

    # the record is in git: the entry file committed, the GTO tags on that commit
    tags = project.git("tag").split()
    assert {"omnicodec@v0.0.1", "omnicodec#candidate#1"} <= set(tags)
    assert "registry/omnicodec/v0.0.1.json" in project.git("show", "--name-only", "omnicodec@v0.0.1")
    assert reg.holder("omnicodec", "candidate") == "v0.0.1"
    assert json.loads((project.root / "registry" / "audit.jsonl").read_text().splitlines()[0])["event"] == "registered"


def test_registering_unchanged_weights_is_a_no_op_and_new_weights_a_new_folder(project):
    project.train_codec(seed=0, valid_mel_distance=0.9)
    reg = project.registry()
    first, _ = reg.register("omnicodec")
    head = project.git("rev-parse", "HEAD")
    again, created = reg.register("omnicodec")
    assert not created and again["version"] == first["version"] and project.git("rev-parse", "HEAD") == head

    project.train_codec(seed=1, valid_mel_distance=0.8)                   # retrained: the folder is replaced
    second, created = reg.register("omnicodec")
    assert created and second["version"] == "v0.0.2"
    assert second["artifact"]["digest"] != first["artifact"]["digest"]
    old = reg.resolve("omnicodec@v0.0.1")                                  # the old version's files are untouched
    assert (old / "model.safetensors").is_file() and old != reg.resolve("omnicodec@v0.0.2")


def test_a_child_records_its_parents_versions(project):
    project.train_codec(seed=0, valid_mel_distance=0.9)
    project.train_lyra(seed=0)
    reg = project.registry()
    lyra, _ = reg.register("lyra")                                         # registers the codec it was built on
    assert lyra["lineage"]["parents"]["omnicodec"]["version"] == "v0.0.1"
    assert reg.versions("omnicodec") == ["v0.0.1"]
    assert sorted(lyra["checks"]) == ["judge_hears_the_prompt", "lyra_beats_unigram"]


def test_the_report_shows_metrics_plots_spectrograms_and_playable_audio(project):
    project.train_codec(seed=0, valid_mel_distance=0.9)
    reg = project.registry()
    entry, _ = reg.register("omnicodec")
    report = project.root / entry["report"]
    page = report.read_text()
    assert "valid_mel_distance" in page and "codec_gate" in page and entry["artifact"]["digest"] in page
    assert "<audio controls" in page and "media/history.png" in page
    media = report.parent / "media"
    assert (media / "omnicodec__examples__0_input.wav").is_file()               # the stage's wav, copied
    assert (media / "omnicodec__examples__0_input.wav.png").stat().st_size > 1000  # its spectrogram


def test_a_folder_without_weights_is_refused_by_name(project):
    folder = project.root / "data" / "models" / "omnicodec"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    with pytest.raises(ArtifactError, match="omnicodec: no weights"):
        project.registry().register("omnicodec")


def test_a_stored_artifact_that_changed_is_detected(project):
    project.train_codec(seed=0, valid_mel_distance=0.9)
    reg = project.registry()
    reg.register("omnicodec")
    stored = reg.resolve("omnicodec@v0.0.1")
    (stored / "config.json").write_text("{}")
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        reg.resolve("omnicodec@v0.0.1")


def test_a_model_whose_parent_was_replaced_since_is_refused(project):
    """dvc.lock says Lyra read another codec than the one in data/models/omnicodec now: no wrong lineage."""
    import yaml

    project.train_codec(seed=0, valid_mel_distance=0.9)
    project.train_lyra(seed=0)
    lock = {"schema": "2.0", "stages": {
        "lyra_pretrain": {"deps": [{"path": "data/tokens", "md5": "t1.dir"}], "outs": [{"path": "data/models/lyra", "md5": "l1.dir"}]},
        "omnicodec": {"deps": [{"path": "data/curated", "md5": "c1.dir"}], "outs": [{"path": "data/models/omnicodec", "md5": "o2.dir"}]},
        "oraql": {"deps": [{"path": "data/models/omnicodec", "md5": "o1.dir"}]},
    }}
    (project.root / "dvc.lock").write_text(yaml.safe_dump(lock))
    lyra, _ = project.registry().register("lyra")               # Lyra reads tokens, not the codec folder: fine
    assert lyra["lineage"]["data"]["deps"]["data/tokens"] == "t1.dir"
    project.root.joinpath("data", "models", "oraql").mkdir(parents=True)
    (project.root / "data" / "models" / "oraql" / "model.safetensors").write_bytes(b"x")
    with pytest.raises(Exception, match="oraql: built from a data/models/omnicodec .o1.dir. that has since been replaced"):
        project.registry().register("oraql")


def test_patterns_may_reach_a_sub_folder_but_training_state_stays_out(tmp_path):
    from components.registry.store import ArtifactStore

    model = tmp_path / "lyra_influence"
    (model / "adapter").mkdir(parents=True)
    (model / "checkpoints").mkdir()
    for name in ("model.safetensors", "config.json", "adapter/adapter_model.safetensors", "checkpoints/optim.safetensors"):
        (model / name).write_bytes(name.encode())
    store = ArtifactStore(tmp_path / "store")
    artifact = store.put(model, ("*.safetensors", "config.json", "adapter/*"))
    assert sorted(artifact.files) == ["adapter/adapter_model.safetensors", "config.json", "model.safetensors"]
    assert (store.verify(artifact) / "adapter" / "adapter_model.safetensors").read_bytes() == b"adapter/adapter_model.safetensors"
