import json

import numpy as np

from components.common.reporting import pipes_metadata, stage_run


def test_pipes_metadata_accepts_what_stages_produce():
    meta = pipes_metadata({
        "n": 3, "x": 0.5, "ok": True, "name": "a", "none": None, "np": np.float32(1.5),
        "counts": {"fast": 2, "slow": 1}, "list": [1, 2], "md": {"raw_value": "# hi", "type": "md"},
    })
    from dagster_pipes import _normalize_param_metadata

    _normalize_param_metadata(meta, "report_asset_materialization", "metadata")  # raises on anything invalid
    assert meta["counts"] == {"raw_value": {"fast": 2, "slow": 1}, "type": "json"}
    assert meta["np"] == 1.5 and meta["md"]["type"] == "md"


def test_stage_run_without_dagster_writes_metrics(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_PIPES_CONTEXT", raising=False)
    with stage_run("demo") as run:
        run.add_metadata(extra=1)
        run.finish({"loss": 0.25, "by_class": {"a": 1}}, tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text()) == {"loss": 0.25, "by_class": {"a": 1}}
    assert run.metadata["loss"] == 0.25 and run.metadata["extra"] == 1
