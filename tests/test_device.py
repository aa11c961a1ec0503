"""The device side: a bundle of the export folder alone, bench and watch on it, and a plain
install (no extras) that brings no TensorFlow."""

import json
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeclf.cli import app
from edgeclf.core.run_directory import Run
from edgeclf.export.bundle import write_bundle
from edgeclf.runtime import read_artifacts
from edgeclf.runtime.open import open_classifier

QUICK = ["--runs", "10", "--warmup", "2", "--batch-sizes", "1"]  # a short bench: the fields, not the numbers

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle(tiny_run, tmp_path_factory):
    run = tiny_run
    tmp = tmp_path_factory.mktemp("device")
    archive = write_bundle(run / "export", tmp / "bundle.tar.gz")
    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
        tar.extractall(tmp / "device", filter="data")
    return run, tmp / "device" / "export", names


def test_bundle_holds_the_runner_the_index_every_validated_file_and_the_parity_set(bundle):
    run, export, names = bundle
    files = {Path(a.path).name for a in read_artifacts(run) if a.status == "ok"}
    wheels = [n for n in names if n.startswith("runner/")]
    assert len(wheels) == 1 and wheels[0].endswith("-py3-none-any.whl")
    parity = [n for n in names if n.startswith("export/parity")]
    assert "export/parity/reference.json" in parity and any(n.endswith(".png") for n in parity)
    assert set(names) - set(parity) == {
        "bundle.json",
        "install.sh",
        wheels[0],
        "export/artifacts.json",
        "export/MODEL_CARD.md",  # the model card travels with the files (edgeclf.export.model_card)
        *(f"export/{f}" for f in files),
    }
    assert (export / "MODEL_CARD.md").read_text().startswith("# Model card: ")
    manifest = json.loads((export.parent / "bundle.json").read_text())
    import hashlib

    assert manifest["runner"]["sha256"] == hashlib.sha256((export.parent / wheels[0]).read_bytes()).hexdigest()
    assert len(manifest["commit"] or "") == 40  # built from this checkout
    with tarfile.open(export.parent.parent / "bundle.tar.gz") as tar:
        assert tar.getmember("install.sh").mode & 0o111  # executable


def test_predict_on_the_bundle_alone_matches_the_run(bundle):
    run, export, _ = bundle
    images = [str(Run.open(run).dataset.root / r.path) for r in Run.open(run).dataset.split("test")]
    for name in ("tflite-int8-qat", "onnx-int8-ptq"):
        here = open_classifier(run, name).predict_files(images).argmax(1)
        there = open_classifier(export, name).predict_files(images).argmax(1)
        assert (here == there).all()


@pytest.mark.slow  # several seconds: the whole suite runs it (the fast one stays under 3 minutes)
def test_bench_on_the_bundle_alone(bundle, tmp_path):
    run, export, _ = bundle
    images = Run.open(run).dataset.root / "bag"
    out = tmp_path / "device.json"
    result = CliRunner().invoke(
        app,
        ["bench", str(export), "--images", str(images), *QUICK, "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert set(data["artifacts"]) == {a.name for a in read_artifacts(export)}  # no Keras baseline on a device
    assert all(r["speedup_vs_keras"] is None for r in data["artifacts"].values())
    missing = CliRunner().invoke(app, ["bench", str(export)])
    assert missing.exit_code == 2 and "pass --images DIR" in missing.output


@pytest.mark.slow  # several seconds: the whole suite runs it (the fast one stays under 3 minutes)
def test_bench_takes_a_time_budget_and_refuses_bad_options(bundle, tmp_path):
    run, export, _ = bundle
    images = Run.open(run).dataset.root / "bag"
    out = tmp_path / "budget.json"
    budget = ["bench", str(export), "--images", str(images), "--seconds", "0.05", "--warmup", "1", "--batch-sizes", "1"]
    result = CliRunner().invoke(app, [*budget, "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert (data["method"]["runs"], data["method"]["seconds"], data["method"]["batch_sizes"]) == (None, 0.05, [1])
    assert all(r["batches"][0]["runs"] >= 10 for r in data["artifacts"].values())  # at least 10 runs in any budget
    for args, message in (
        (["--runs", "5", "--seconds", "1"], "--runs and --seconds: give one of them"),
        (["--seconds", "0"], "--seconds 0: must be above 0"),
        (["--batch-sizes", "1,x"], "--batch-sizes '1,x'"),
        (["--batch-sizes", "0"], "--batch-sizes [0]: Input should be greater than or equal to 1"),
        (["--device", "tpu"], "--device 'tpu'"),
    ):
        bad = CliRunner().invoke(app, ["bench", str(export), "--images", str(images), *args])
        lines = [line for line in bad.output.splitlines() if line.strip()]
        assert bad.exit_code == 2 and len(lines) == 1 and message in lines[0], (args, bad.output)


class DeviceCommand:
    """`edgeclf ARGS` in a subprocess where TensorFlow cannot be imported, as on a device; its stdout
    and stderr lines are collected as they come (lines, errors). One 60 s deadline covers every
    wait; `stop()` sends SIGTERM and waits; leaving the block kills the process if it is still alive."""

    def __init__(self, *args: str):
        code = "import sys; sys.modules['tensorflow'] = None; from edgeclf.cli import main; main()"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.reader = threading.Thread(
            target=lambda: self.lines.extend(iter(self.proc.stdout.readline, "")), daemon=True
        )
        self.reader.start()
        self.error_reader = threading.Thread(
            target=lambda: self.errors.extend(iter(self.proc.stderr.readline, "")), daemon=True
        )
        self.error_reader.start()
        self.deadline = time.time() + 60

    def wait_for(self, done) -> None:
        while not done(self.lines) and time.time() < self.deadline:
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.reader.join(timeout=10)
        self.error_reader.join(timeout=10)

    def __enter__(self) -> "DeviceCommand":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()


def test_watch_classifies_new_images_and_stops_on_sigterm(bundle, tmp_path):
    run, export, _ = bundle
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "before.png").write_bytes(b"present at start: ignored without --existing")
    with DeviceCommand("watch", str(export), str(folder), "--json", "--interval", "0.1") as watch:
        watch.wait_for(lambda lines: any("watching" in line for line in watch.errors))  # --json: status on stderr
        sources = [Run.open(run).dataset.root / r.path for r in Run.open(run).dataset.split("test")[:3]]
        for i, src in enumerate(sources):
            (folder / f"{i}.png").write_bytes(src.read_bytes())
        (folder / "notes.txt").write_text("not an image: ignored")
        watch.wait_for(lambda lines: sum(line.startswith("{") for line in lines) >= 3)
        watch.stop()
    assert watch.proc.returncode == 0, "".join(watch.errors)[-2000:]
    results = [json.loads(line) for line in watch.lines]  # stdout holds JSON lines only
    assert [Path(r["image"]).name for r in results] == ["0.png", "1.png", "2.png"]
    assert all(0 <= r["probability"] <= 1 and r["invoke_ms"] > 0 and r["decode_ms"] > 0 for r in results)
    assert any("stopped after 3 image(s)" in line for line in watch.errors)


def test_serve_answers_http_and_stops_on_sigterm(bundle):
    import re
    import urllib.error
    import urllib.request

    run, export, _ = bundle

    def call(path, body=None):
        request = urllib.request.Request(url + path, data=body, method="POST" if body is not None else "GET")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    with DeviceCommand("serve", str(export), "--port", "0", "--top-k", "2") as serve:
        serve.wait_for(lambda lines: any("serving" in line for line in lines))
        url = re.search(r"(http://[\d.]+:\d+)/predict", "".join(serve.lines)).group(1)
        sources = [Run.open(run).dataset.root / r.path for r in Run.open(run).dataset.split("test")[:4]]
        expected = open_classifier(export).predict_files(sources).argmax(1)
        labels = open_classifier(export).labels
        for src, best in zip(sources, expected, strict=False):
            status, body = call("/predict", src.read_bytes())
            assert status == 200 and len(body["top_k"]) == 2 and body["top_k"][0]["label"] == labels[best]
            assert body["top_k"][0]["probability"] >= body["top_k"][1]["probability"] and body["invoke_ms"] > 0
        status, body = call("/predict?top_k=3", sources[0].read_bytes())
        assert status == 200 and len(body["top_k"]) == 3
        health = call("/health")
        assert health[0] == 200 and health[1]["labels"] == labels and "LiteRT" in health[1]["engine"]
        assert (
            call("/predict", b"not an image")[0] == 400 and "not a usable image" in call("/predict", b"xx")[1]["error"]
        )
        assert call("/predict", b"")[0] == 400
        assert call("/predict?top_k=0", sources[0].read_bytes())[0] == 400
        assert call("/elsewhere")[0] == 404
        serve.stop()
    assert serve.proc.returncode == 0, "".join(serve.errors)[-2000:]
    assert any(line.strip() == "stopped" for line in serve.lines)


def test_serve_on_a_busy_port_is_a_one_line_error(bundle):
    import socket

    _, export, _ = bundle
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", str(export), "--port", str(port)])
    assert result.exit_code == 2 and f"--port {port}: cannot listen" in result.output


def test_install_script_refuses_a_wheel_that_does_not_match_the_bundle(bundle, tmp_path):
    _, export, _ = bundle
    copy = shutil.copytree(export.parent, tmp_path / "bundle")
    wheel = next((copy / "runner").glob("edgeclf-*.whl"))
    wheel.write_bytes(wheel.read_bytes() + b"tampered")
    proc = subprocess.run(["bash", str(copy / "install.sh"), str(tmp_path / "venv")], capture_output=True, text=True)
    assert proc.returncode == 2 and "does not match bundle.json" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "venv").exists()


@pytest.mark.slow
def test_bundle_install_script_installs_its_wheel_without_tensorflow_and_verifies(bundle, tmp_path):
    """The device's path: unpack the bundle, bash install.sh (the bundle's own runner wheel, checked
    against bundle.json; edgeclf itself never comes from the package index), edgeclf verify, predict, bench."""
    run, export, _ = bundle
    venv = tmp_path / "venv"
    install = subprocess.run(["bash", str(export.parent / "install.sh"), str(venv)], capture_output=True, text=True)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    assert "runner/edgeclf-" in install.stdout and "PASS" in install.stdout and "FAIL" not in install.stdout
    direct = next(venv.glob("lib/python*/site-packages/edgeclf-*.dist-info/direct_url.json"))
    assert json.loads(direct.read_text())["url"].startswith(f"file://{export.parent / 'runner'}/edgeclf-")
    listed = subprocess.run(
        [str(venv / "bin" / "pip"), "list"], capture_output=True, text=True, check=True
    ).stdout.lower()
    assert "tensorflow" not in listed and "tf-keras" not in listed and "ai-edge-litert" in listed
    # doctor on the plain device install: the training side is information, unless asked for
    doctor = subprocess.run([str(venv / "bin" / "edgeclf"), "doctor", "--json"], capture_output=True, text=True)
    assert doctor.returncode == 0, doctor.stderr[-2000:]
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["training side"]["status"] == "info" and "tensorflow" in checks["training side"]["detail"]
    assert checks["engine litert"]["status"] == "ok" and checks["engine onnxruntime"]["status"] == "ok"
    doctor = subprocess.run([str(venv / "bin" / "edgeclf"), "doctor", "--training"], capture_output=True, text=True)
    assert doctor.returncode == 1 and "pip install 'edgeclf[train]'" in " ".join(doctor.stdout.split())
    image = str(next((Run.open(run).dataset.root / "bag").glob("*.png")))
    proc = subprocess.run(
        [str(venv / "bin" / "edgeclf"), "predict", str(export), image, "--json"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)[0]["top_k"][0]["label"] in read_artifacts(export)[0].labels
    out = tmp_path / "plain.json"
    bench = subprocess.run(
        [
            str(venv / "bin" / "edgeclf"),
            "bench",
            str(export),
            "--images",
            str(Run.open(run).dataset.root / "bag"),
            "--runs",
            "5",
            "--warmup",
            "1",
            "--batch-sizes",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert bench.returncode == 0, bench.stderr[-2000:]
    # the runner installs without OpenVINO: its entries are skipped with a note, the others measured
    measured = json.loads(out.read_text())
    openvino = {a.name for a in read_artifacts(export) if a.engine == "openvino"}
    assert set(measured["artifacts"]) == {a.name for a in read_artifacts(export)} - openvino
    if openvino:
        assert any("engine is not installed on this device" in note for note in measured["notes"])


def _tar(path, *members):
    """A .tar.gz of (TarInfo, bytes or None) members."""
    import io

    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _member(name, data=b"x", kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


def test_unpack_checks_and_verifies_a_bundle(bundle, tmp_path):
    run, export, _ = bundle
    archive = export.parent.parent / "bundle.tar.gz"
    dest = tmp_path / "v2"
    result = CliRunner().invoke(app, ["unpack", str(archive), str(dest)])
    assert result.exit_code == 0, result.output
    assert {a.name for a in read_artifacts(dest / "export")} == {a.name for a in read_artifacts(export)}
    again = CliRunner().invoke(app, ["unpack", str(archive), str(dest)])
    assert again.exit_code == 2 and "is not an empty folder" in again.output


@pytest.mark.parametrize(
    "members, message",
    [
        ([_member("../escape.txt")], "absolute or parent-relative name"),
        ([_member("/etc/evil")], "absolute or parent-relative name"),
        ([_member("export/model.tflite", kind=tarfile.SYMTYPE, link="/etc/passwd")], "is a link"),
        ([_member("export/hard", kind=tarfile.LNKTYPE, link="bundle.json")], "is a link"),
        ([_member("dev", kind=tarfile.CHRTYPE)], "a device or special file"),
        ([_member("bundle.json", b"{}")], "no usable bundle.json"),
    ],
)
def test_unpack_refuses_hostile_bundles_and_writes_nothing(tmp_path, members, message):
    archive = _tar(tmp_path / "evil.tar.gz", *members)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(app, ["unpack", str(archive), str(tmp_path / "out")])
    assert result.exit_code == 2 and result.output.count("error:") == 1 and message in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no out/, no staging, nothing outside


def test_unpack_refuses_a_non_bundle_and_a_bomb(tmp_path, monkeypatch):
    import edgeclf.device.unpack

    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not gzip at all")
    result = CliRunner().invoke(app, ["unpack", str(junk), str(tmp_path / "out")])
    assert result.exit_code == 2 and "not a readable .tar.gz bundle" in result.output
    monkeypatch.setattr(edgeclf.device.unpack, "MAX_BYTES", 1000)
    big = _tar(tmp_path / "big.tar.gz", _member("a.bin", b"\0" * 600), _member("b.bin", b"\0" * 600))
    result = CliRunner().invoke(app, ["unpack", str(big), str(tmp_path / "out")])
    assert result.exit_code == 2 and "unpacked; not an edgeclf bundle" in result.output


def test_links_out_of_an_export_folder_are_refused(bundle, tmp_path):
    run, export, _ = bundle
    copy = tmp_path / "export"
    shutil.copytree(export, copy)
    outside = tmp_path / "elsewhere.tflite"
    (copy / "model_fp32.tflite").rename(outside)
    (copy / "model_fp32.tflite").symlink_to(outside)
    image = str(next((Run.open(run).dataset.root / "bag").glob("*.png")))
    result = CliRunner().invoke(app, ["predict", str(copy), image, "--artifact", "tflite-fp32"])
    assert result.exit_code == 2 and "outside the export folder; refused" in result.output
    with pytest.raises(Exception, match="a bundle holds regular files only"):
        write_bundle(copy, tmp_path / "b.tar.gz")


def _manifests(wheel: bytes = b"wheel", sha: str | None = None, artifacts=()):
    """bundle.json (naming runner/edgeclf-0-py3-none-any.whl) and export/artifacts.json members."""
    import hashlib

    bundle = {
        "runner": {"file": "runner/edgeclf-0-py3-none-any.whl", "sha256": sha or hashlib.sha256(wheel).hexdigest()}
    }
    return [
        _member("bundle.json", json.dumps(bundle).encode()),
        _member("runner/edgeclf-0-py3-none-any.whl", wheel),
        _member("export/artifacts.json", json.dumps({"artifacts": list(artifacts)}).encode()),
    ]


@pytest.mark.parametrize(
    "extra, message",
    [
        ([_member("export/" + "n" * 300 + ".tflite")], "has a name part over 255 bytes"),  # was ENAMETOOLONG
        ([_member("export/parity"), _member("export/parity/reference.json")], "conflicts with another entry"),
        ([_member("export/huge.bin", b"\0" * 5000)], "entry 'export/huge.bin' is not part of an edgeclf bundle"),
        ([_member("export/model_fp32.tflite", b"\0" * 5000)], "is 5000 bytes, artifacts.json records 100"),
        ([_member("runner/other.whl")], "entry 'runner/other.whl' is not part of an edgeclf bundle"),
    ],
)
def test_unpack_checks_names_and_sizes_before_it_writes_a_byte(tmp_path, extra, message):
    """Before: a 300-byte name or a file/folder conflict gave a traceback, and a bundle's members
    were extracted before its manifests were compared with them (a 21 MB bundle wrote 3.58 GB
    before it was refused). Now each is one line, and nothing is written anywhere."""
    entry = {"name": "tflite-fp32", "status": "ok", "path": "model_fp32.tflite", "bytes": 100}
    archive = _tar(tmp_path / "b.tar.gz", *_manifests(artifacts=[entry]), *extra)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(app, ["unpack", str(archive), str(tmp_path / "out")])
    assert result.exit_code == 2 and result.output.count("error:") == 1, result.output
    assert message in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_unpack_hashes_the_runner_wheel_in_pieces(tmp_path):
    """Before: the wheel was read whole to hash it (a 9 MB bundle holding a 2 GB wheel took 2.1 GB
    RSS, fatal on a 2 GB Pi). A 48 MiB wheel whose sha256 does not match: refused, peak small."""
    import tracemalloc

    archive = _tar(tmp_path / "b.tar.gz", *_manifests(wheel=b"\0" * (48 << 20), sha="0" * 64))
    tracemalloc.start()
    try:
        result = CliRunner().invoke(app, ["unpack", str(archive), str(tmp_path / "out")])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.exit_code == 2 and "the runner wheel does not match bundle.json's sha256" in result.output
    assert peak < 16 << 20, f"peak {peak >> 20} MiB"
    assert not (tmp_path / "out").exists()


def test_the_bundled_index_lists_only_the_files_the_bundle_holds(tiny_run, tmp_path):
    """Before: the bundle's artifacts.json listed failed artifacts whose files were not in it
    (issue 22); now the bundled index holds the ok entries alone, and unpack verifies them."""
    export = tmp_path / "export"
    shutil.copytree(tiny_run / "export", export)
    index = json.loads((export / "artifacts.json").read_text())
    failed = next(a for a in index["artifacts"] if a["name"] == "tflite-dynamic")  # a file no other entry uses
    failed["status"] = "failed"
    (export / "artifacts.json").write_text(json.dumps(index))
    (export / Path(failed["path"]).name).unlink()  # a failed artifact's file may not exist at all
    archive = write_bundle(export, tmp_path / "b.tar.gz")
    with tarfile.open(archive) as tar:
        bundled = json.load(tar.extractfile("export/artifacts.json"))
    names = [a["name"] for a in bundled["artifacts"]]
    assert failed["name"] not in names and all(a["status"] == "ok" for a in bundled["artifacts"])
    assert len(names) == len(index["artifacts"]) - 1
    result = CliRunner().invoke(app, ["unpack", str(archive), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output


def _run_with_settings(tiny_run, tmp_path, settings: dict) -> Path:
    """A copy of the fixture run whose config.yaml (as `train --config` would resolve it) has these
    dotted keys changed."""
    import yaml

    run = shutil.copytree(tiny_run, tmp_path / "run")
    config = yaml.safe_load((run / "config.yaml").read_text())
    for key, value in settings.items():
        section, name = key.split(".")
        config[section][name] = value
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    return run


def test_device_commands_read_the_run_config(tiny_run, tmp_path):
    """predict, watch and serve resolve default.yaml, then the run's config.yaml (when MODEL is a run
    or its export folder), then the command line; a bare file or an unpacked bundle has no run
    (before issue 22 they read default.yaml alone, ignoring what the run was configured with)."""
    from edgeclf.device.settings import device_settings, run_config

    run = _run_with_settings(tiny_run, tmp_path, {"predict.top_k": 2, "serve.timeout": 3.5, "watch.settle": 0.7})
    assert run_config(run) == run_config(run / "export") == run / "config.yaml"
    assert run_config(run / "export" / "model_fp32.tflite") is None and run_config(tmp_path) is None
    cfg = device_settings(run / "export", {}, {})
    assert (cfg.predict.top_k, cfg.serve.timeout, cfg.watch.settle) == (2, 3.5, 0.7)
    assert device_settings(run, {"predict.top_k": 1}, {}).predict.top_k == 1  # the command line on top
    assert device_settings(tmp_path, {}, {}).predict.top_k == 5  # no run: configs/default.yaml

    image = run / "export" / "parity" / "samples" / "000.png"
    result = CliRunner().invoke(app, ["predict", str(run), str(image), "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)[0]["top_k"]) == 2
    again = CliRunner().invoke(app, ["predict", str(run), str(image), "--json", "--top-k", "3"])
    assert len(json.loads(again.stdout)[0]["top_k"]) == 3

    broken = _run_with_settings(tiny_run, tmp_path / "broken", {"predict.top_k": 0})
    refused = CliRunner().invoke(app, ["predict", str(broken), str(image)])
    assert refused.exit_code == 2 and "config.yaml" in refused.output and "top_k" in refused.output


def test_threads_means_the_same_everywhere(tiny_run):
    """--threads 0 is every core for bench, predict, watch, serve, verify and sweep (before issue 22
    it was every core for bench and invalid for predict); unset is the engine's default."""
    import os

    from edgeclf.core.config import load_config
    from edgeclf.runtime.machine import inference_threads

    assert inference_threads(None) is None and inference_threads(3) == 3
    assert inference_threads(0) == os.cpu_count()
    with pytest.raises(ValueError, match="threads -1"):
        inference_threads(-1)
    for key in ("bench.threads", "predict.threads", "sweep.threads", "verify.threads"):
        assert getattr(load_config(overrides={key: 0}), key.split(".")[0]).threads == 0
    image = str(tiny_run / "export" / "parity" / "samples" / "000.png")
    result = CliRunner().invoke(app, ["predict", str(tiny_run), image, "--threads", "0", "--json"])
    assert result.exit_code == 0, result.output
    refused = CliRunner().invoke(app, ["predict", str(tiny_run), image, "--threads", "-1"])
    assert refused.exit_code == 2 and "--threads" in refused.output
