"""Nothing half-written: files replaced through a temporary name, folders staged and renamed."""

import pytest

from edgeclf.core.atomic import StagedDirectory, atomic_write_json, replacing


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


DEAD = 2**22 + 12345  # above Linux's default pid_max (4,194,304 = 2**22): no such process


def test_leftovers_of_a_killed_writer_are_cleared_by_the_next_one(tmp_path, caplog):
    out = tmp_path / "run"
    (tmp_path / f".run.partial-{DEAD}").mkdir()  # killed while staging
    (tmp_path / f".run.partial-{DEAD}" / "model.keras").write_text("half")
    target = tmp_path / "artifacts.json"
    (tmp_path / f".artifacts.tmp-{DEAD}.json").write_text("{half")  # killed while writing a file
    with caplog.at_level("WARNING", logger="edgeclf.core.atomic"):
        with StagedDirectory(out) as stage:
            (stage.path / "model.keras").write_text("new")
        atomic_write_json(target, {"ok": True})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifacts.json", "home", "run"]
    assert sum("left by a killed process" in r.getMessage() for r in caplog.records) == 2


def test_a_folder_moved_aside_by_a_killed_writer_comes_back(tmp_path):
    out = tmp_path / "run"
    old = tmp_path / f".run.old-{DEAD}"  # killed between moving the old run aside and renaming the new one
    old.mkdir()
    (old / "model.keras").write_text("the previous run")
    from edgeclf.core.atomic import clear_stale

    clear_stale(out, (r"\.run\.old-(?P<pid>\d+)",))
    assert (out / "model.keras").read_text() == "the previous run" and not old.exists()


def test_a_live_writer_of_the_same_target_is_refused(tmp_path):
    import os

    from edgeclf.core.errors import EdgeclfError

    (tmp_path / f".run.partial-{os.getppid()}").mkdir()  # the parent process: alive
    with pytest.raises(EdgeclfError, match=f"another process \\(pid {os.getppid()}\\) is writing it"):
        with StagedDirectory(tmp_path / "run"):
            pass


@pytest.mark.slow  # several seconds: the whole suite runs it (the fast one stays under 3 minutes)
def test_a_full_disk_is_one_error_line_and_the_previous_file_stays(tiny_run, tmp_path, monkeypatch):
    """ENOSPC while the result is written (simulated: a real small tmpfs needs privileges CI lacks)."""
    import errno
    import shutil
    from pathlib import Path

    from typer.testing import CliRunner

    from edgeclf.cli import app
    from edgeclf.core.run_directory import Run

    export = tmp_path / "export"
    shutil.copytree(tiny_run / "export", export)
    out = tmp_path / "bench.json"
    out.write_text('{"previous": true}')
    real = Path.write_bytes

    def full(path, data):
        if path.name.startswith(".bench.tmp-"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    dataset = Run.open(tiny_run).dataset
    images = dataset.root / dataset.split("test")[0].path
    result = CliRunner().invoke(
        app, ["bench", str(export), "--images", str(images), "--runs", "2", "--batch-sizes", "1", "--out", str(out)]
    )
    assert result.exit_code == 2 and result.output.count("error:") == 1 and "Traceback" not in result.output
    assert "No space left on device writing" in " ".join(result.output.split())
    assert out.read_text() == '{"previous": true}' and sorted(p.name for p in tmp_path.iterdir()) == [
        "bench.json",
        "export",
        "home",
    ]


def test_renames_are_made_durable_with_their_folder_synced(tmp_path, monkeypatch):
    """Before: "nothing half-written ... power loss" held only for file contents: the folder was
    never fsynced after a rename, and StagedDirectory synced nothing (issue 22)."""
    import os

    from edgeclf.core.atomic import StagedDirectory, atomic_write_text

    synced = []
    real = os.fsync

    def recording(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    atomic_write_text(tmp_path / "a.txt", "x")
    assert synced[-1] == str(tmp_path) and any(p.endswith(f".tmp-{os.getpid()}.txt") for p in synced)
    synced.clear()
    with StagedDirectory(tmp_path / "run") as stage:
        (stage.path / "sub").mkdir()
        (stage.path / "sub" / "f.bin").write_bytes(b"1")
        (stage.path / "g.json").write_text("{}")
    names = [os.path.basename(p) for p in synced]
    assert {"f.bin", "g.json", "sub"} <= set(names)
    assert synced[-1] == str(tmp_path)  # the parent, after the rename
