"""Nothing half-written: files replaced through a temporary name, folders staged and renamed."""

import pytest

from edgeclf.atomic import StagedDirectory, atomic_write_json, replacing


def test_a_staged_directory_replaces_the_old_one_only_when_complete(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    with pytest.raises(RuntimeError), StagedDirectory(out) as stage:
        (stage.path / "model.keras").write_text("half")
        raise RuntimeError("disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "run"] and (out / "keep.txt").read_text() == "old"
    with StagedDirectory(out) as stage:
        (stage.path / "model.keras").write_text("new")
    assert [p.name for p in out.iterdir()] == ["model.keras"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "run"]  # no staging or old copy left


def test_replacing_keeps_the_target_until_the_new_file_is_complete(tmp_path):
    target = tmp_path / "model.tflite"
    target.write_bytes(b"old")
    with pytest.raises(ValueError), replacing(target) as tmp:
        assert tmp.suffix == ".tflite" and tmp.parent == tmp_path  # same folder: the rename is atomic
        tmp.write_bytes(b"ne")
        raise ValueError("converter failed")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["home", "model.tflite"]
    with replacing(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["home", "model.tflite"]
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    assert (tmp_path / "a.json").read_text() == '{\n  "x": 1\n}\n'
