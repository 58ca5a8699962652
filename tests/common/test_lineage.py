import json

from components.common.lineage import tree_digest, write_lineage


def test_tree_digest_tracks_content_and_names_not_caches(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    before = tree_digest(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert tree_digest(tmp_path) == before
    (tmp_path / "a.py").write_text("x = 2\n")
    assert tree_digest(tmp_path) != before


def test_write_lineage_records_inputs_params_and_code(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "f.txt").write_text("data")
    record = write_lineage(tmp_path / "out", stage="demo", inputs={"raw": src}, params={"k": 1},
                           code_paths=["components/common"])
    on_disk = json.loads((tmp_path / "out" / "lineage.json").read_text())
    assert on_disk["inputs"]["raw"]["digest"] == tree_digest(src) == record["inputs"]["raw"]["digest"]
    assert on_disk["params"] == {"k": 1} and len(on_disk["code_version"]) == 12
