"""StageRun.output, the one way a stage writes its folder."""

import json

import pytest

from components.common.reporting import StageRun


def test_the_folder_appears_whole_with_its_lineage_and_plots(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("data")
    run = StageRun("lyra_pretrain", None)
    with run.output(tmp_path / "out", inputs={"raw": src}, params={"k": 1}, lineage={"metrics": {"loss": 1.5}}) as staged:
        (staged.dir / "model.txt").write_text("weights")
        staged.image("curve", "curve.png").write_bytes(b"png")
        assert not (tmp_path / "out").exists()                     # nothing visible until the end
    lineage = json.loads((tmp_path / "out" / "lineage.json").read_text())
    assert lineage["stage"] == "lyra_pretrain" and lineage["metrics"] == {"loss": 1.5}
    assert lineage["inputs"]["raw"]["path"] == str(src) and lineage["params"] == {"k": 1}
    assert (tmp_path / "out" / "model.txt").read_text() == "weights"
    assert run.metadata["curve_path"]["raw_value"] == str(tmp_path / "out" / "curve.png")


def test_an_exception_leaves_the_previous_output_untouched(tmp_path):
    run = StageRun("lyra_pretrain", None)
    with run.output(tmp_path / "out", inputs={}) as staged:
        (staged.dir / "model.txt").write_text("v1")
    with pytest.raises(RuntimeError):
        with run.output(tmp_path / "out", inputs={}) as staged:
            (staged.dir / "model.txt").write_text("v2, half")
            staged.image("curve", "curve.png")
            raise RuntimeError("killed mid-write")
    assert (tmp_path / "out" / "model.txt").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]   # no staging folder left behind
    assert "curve" not in run.metadata
