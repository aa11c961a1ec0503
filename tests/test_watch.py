"""edgeclf watch's folder mode under the faults a device sees: half-written, vanishing, unreadable
and repeated files, links, a folder that disappears, and restarts."""

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from edgeclf.core.config import WatchConfig
from edgeclf.core.errors import EdgeclfError
from edgeclf.core.images import MAX_PIXELS
from edgeclf.core.run_directory import Run
from edgeclf.device.signals import StopSignal
from edgeclf.device.watch import STATE_FILE, watch_folder
from edgeclf.runtime.open import open_classifier

SETTLE = 0.3
QUICK = WatchConfig(interval=0.05, settle=SETTLE)  # scans every 50 ms


class Watcher:
    """watch_folder in a thread, with its records and a way to stop it."""

    def __init__(self, classifier, folder, **options):
        # the folders start empty: --existing avoids racing the first scan against the test's first file
        options.setdefault("existing", True)
        self.records, self.stop, self.error = [], StopSignal(signals=()), None
        self.thread = threading.Thread(target=self._run, args=(classifier, folder), kwargs=options, daemon=True)
        self.thread.start()

    def _run(self, classifier, folder, **options):
        try:
            self.count = watch_folder(
                classifier, folder, self.records.append, QUICK, MAX_PIXELS, stop=self.stop, **options
            )
        except EdgeclfError as exc:
            self.error = exc

    def wait_for(self, condition, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not condition(self.records) and time.monotonic() < deadline and self.thread.is_alive():
            time.sleep(0.02)
        return condition(self.records)

    def finish(self):
        self.stop.event.set()
        self.thread.join(5)
        assert not self.thread.is_alive()
        return self.records


@pytest.fixture(scope="module")
def classifier(tiny_run):
    return open_classifier(tiny_run)


@pytest.fixture(scope="module")
def images(tiny_run):
    dataset = Run.open(tiny_run).dataset
    return [(dataset.root / r.path).read_bytes() for r in dataset.split("test")[:3]]


def test_a_slowly_written_file_is_read_once_when_complete(classifier, images, tmp_path):
    watcher = Watcher(classifier, tmp_path)
    target = tmp_path / "slow.png"
    with target.open("wb") as stream:  # written in pieces, each within the settle time
        for i in range(0, len(images[0]), 200):
            stream.write(images[0][i : i + 200])
            stream.flush()
            time.sleep(SETTLE / 4)
    assert watcher.wait_for(lambda r: len(r) >= 1)
    time.sleep(3 * SETTLE)
    records = watcher.finish()
    assert len(records) == 1 and records[0]["image"] == str(target) and "label" in records[0], records


def test_vanishing_unreadable_and_broken_files_get_records_not_crashes(classifier, images, tmp_path, monkeypatch):
    watcher = Watcher(classifier, tmp_path)
    (tmp_path / "gone.png").write_bytes(images[0])
    time.sleep(SETTLE / 3)
    (tmp_path / "gone.png").unlink()  # listed, then gone before it settled
    (tmp_path / "broken.png").write_bytes(images[1][:40])
    locked = tmp_path / "locked.png"
    real = Path.read_bytes
    monkeypatch.setattr(
        Path,
        "read_bytes",
        lambda p: (_ for _ in ()).throw(PermissionError(13, "denied", str(p))) if p == locked else real(p),
    )  # noqa: E501
    locked.write_bytes(images[2])
    assert watcher.wait_for(lambda r: len(r) >= 3)
    records = {Path(r["image"]).name: r for r in watcher.finish()}
    assert records["gone.png"]["error"] == "vanished before it could be read"
    assert "truncated" in records["broken.png"]["error"] or "image" in records["broken.png"]["error"]
    assert records["locked.png"]["error"] == "could not be read after 3 tries"


def test_each_content_is_reported_once_across_names_and_restarts(classifier, images, tmp_path):
    watcher = Watcher(classifier, tmp_path)
    (tmp_path / "a.png").write_bytes(images[0])
    assert watcher.wait_for(lambda r: len(r) >= 1)
    (tmp_path / "copy_of_a.png").write_bytes(images[0])  # the same bytes under another name
    (tmp_path / "b.png").write_bytes(images[1])
    assert watcher.wait_for(lambda r: len(r) >= 2)
    time.sleep(3 * SETTLE)
    first = watcher.finish()
    assert sorted(Path(r["image"]).name for r in first) == ["a.png", "b.png"]
    assert len(json.loads((tmp_path / STATE_FILE).read_text())["done"]) == 2
    again = Watcher(classifier, tmp_path, existing=True)  # a restart over the same folder
    time.sleep(4 * SETTLE)
    assert again.finish() == []
    forced = Watcher(classifier, tmp_path, existing=True, reprocess=True)
    assert forced.wait_for(lambda r: len(r) >= 3)
    assert len(forced.finish()) == 3


def test_links_are_not_followed(classifier, images, tmp_path):
    outside = tmp_path / "outside.png"
    outside.write_bytes(images[0])
    watched = tmp_path / "watched"
    watched.mkdir()
    watcher = Watcher(classifier, watched)
    (watched / "link.png").symlink_to(outside)
    assert watcher.wait_for(lambda r: len(r) >= 1)
    (record,) = watcher.finish()
    assert "a link: not followed" in record["error"]


def test_the_folder_disappearing_is_a_clear_error(classifier, tmp_path):
    folder = tmp_path / "incoming"
    folder.mkdir()
    watcher = Watcher(classifier, folder)
    time.sleep(0.2)
    shutil.rmtree(folder)
    watcher.thread.join(5)
    assert isinstance(watcher.error, EdgeclfError) and "the watched folder disappeared" in str(watcher.error)


@pytest.mark.parametrize(
    "kind, warning",
    [
        ("deep", "nested 100000 levels deep"),
        ("not json", "not valid JSON"),
        ("a list", "expected a JSON object"),
        ("binary", "not UTF-8 text"),
        ("folder", "is a folder"),
        ("missing folder", "is in a folder that does not exist"),
    ],
)
def test_a_bad_state_file_never_stops_the_watch(classifier, images, tmp_path, caplog, kind, warning):
    """Before: a 100,000-deep .edgeclf-watch.json dropped into the watched folder stopped watch at
    start (exit 1: a crash loop under systemd), and a state path that is a folder or in a missing
    folder crashed at the first image. Now: a warning, a fresh state, and every image reported."""
    folder = tmp_path / "in"
    folder.mkdir()
    state = folder / STATE_FILE
    if kind == "deep":
        state.write_text("[" * 100_000 + "]" * 100_000)
    elif kind == "not json":
        state.write_text("{not json")
    elif kind == "a list":
        state.write_text("[1]")
    elif kind == "binary":
        state.write_bytes(b"\xff\xfe" * 10)
    elif kind == "folder":
        state.mkdir()
    else:
        state = tmp_path / "gone" / "state.json"
    watcher = Watcher(classifier, folder, state=state)
    (folder / "a.png").write_bytes(images[0])
    assert watcher.wait_for(lambda r: len(r) >= 1)
    records = watcher.finish()
    assert watcher.error is None and "label" in records[0], records
    assert any(warning in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    if kind in ("deep", "not json", "a list", "binary"):  # replaced by a fresh, usable state
        assert len(json.loads(state.read_text())["done"]) == 1


def test_watch_json_writes_only_json_lines_to_stdout(tiny_run, images, tmp_path):
    """Before: `watch --json` wrote its 'watching ...' and 'stopped ...' lines to stdout too."""
    import os
    import signal
    import subprocess
    import sys

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(images[0])
    (folder / STATE_FILE).write_text("[" * 1000)  # a warning, which goes to stderr as well
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgeclf",
            "watch",
            str(tiny_run),
            str(folder),
            "--existing",
            "--json",
            "--interval",
            "0.05",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (folder / STATE_FILE).read_text().startswith("{"):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    lines = out.splitlines()
    assert proc.returncode == 0, err
    assert lines and all(json.loads(line)["image"].endswith("a.png") for line in lines), out
    assert "watching" in err and "stopped after 1 image" in err and "starting a fresh state file" in err


def test_a_library_call_installs_no_signal_handlers_and_no_warning_filters(classifier, tmp_path):
    """Before: watch_folder (and watch_camera) made a StopSignal by default, installing SIGINT and
    SIGTERM handlers in the caller's process; importing edgeclf.core.images set a process-wide Pillow
    warnings filter. Only the CLI, which owns its process, does either (issue 22)."""
    import signal
    import subprocess
    import sys

    folder = tmp_path / "in"
    folder.mkdir()
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    threading.Timer(0.3, lambda: shutil.rmtree(folder)).start()
    with pytest.raises(EdgeclfError, match="the watched folder disappeared"):
        watch_folder(classifier, folder, lambda record: None, QUICK, MAX_PIXELS)  # main thread, no stop given
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    code = (
        "import warnings, edgeclf.core.images, edgeclf.runtime, edgeclf.device.watch; "
        "assert not [f for f in warnings.filters if 'PIL' in str(getattr(f[3], 'pattern', f[3]))], warnings.filters"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).returncode == 0


def test_a_scan_is_testable_without_threads_or_sleeps(classifier, images, tmp_path):
    """FolderWatcher.scan(now) holds the folder mode's logic; the times are the test's (issue 22)."""
    from edgeclf.device.watch import FolderWatcher

    watcher = FolderWatcher(classifier, tmp_path, settle=1.0, max_pixels=MAX_PIXELS, existing=True)
    (tmp_path / "a.png").write_bytes(images[0])
    assert watcher.scan(now=100.0) == []  # first seen: not stable yet
    assert watcher.scan(now=100.5) == []  # unchanged, but only 0.5 s of the 1 s settle time
    (records,) = [watcher.scan(now=101.0)]
    assert [r.get("label") is not None for r in records] == [True] and watcher.classified == 1
    assert watcher.scan(now=200.0) == []  # reported once
    (tmp_path / "b.png").write_bytes(b"not an image")
    watcher.scan(now=300.0)
    (bad,) = watcher.scan(now=301.0)
    assert bad["image"].endswith("b.png") and "error" in bad
    (tmp_path / "c.png").write_bytes(images[1])
    watcher.scan(now=400.0)
    (tmp_path / "c.png").unlink()
    (gone,) = watcher.scan(now=400.1)
    assert gone["error"] == "vanished before it could be read"
