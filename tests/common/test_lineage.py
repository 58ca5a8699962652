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
    record = write_lineage(tmp_path / "out", stage="lyra_pretrain", inputs={"raw": src}, params={"k": 1})
    on_disk = json.loads((tmp_path / "out" / "lineage.json").read_text())
    assert on_disk["inputs"]["raw"]["digest"] == tree_digest(src) == record["inputs"]["raw"]["digest"]
    assert on_disk["params"] == {"k": 1} and len(on_disk["code_version"]) == 12


def test_lineage_is_a_function_of_its_inputs_only(tmp_path):
    """lineage.json sits inside hashed outputs: written twice from the same inputs it is byte-identical."""
    import time

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "f.txt").write_text("data")
    write_lineage(tmp_path / "a", stage="lyra_pretrain", inputs={"raw": tmp_path / "in"}, params={"k": 1})
    time.sleep(1.1)                                      # a clock in the record would now differ
    write_lineage(tmp_path / "b", stage="lyra_pretrain", inputs={"raw": tmp_path / "in"}, params={"k": 1})
    assert (tmp_path / "a" / "lineage.json").read_bytes() == (tmp_path / "b" / "lineage.json").read_bytes()
