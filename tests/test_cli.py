"""The command line through CliRunner (and one real subprocess): help, errors, a tiny run."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from edgeclf.cli import app
from tests.helpers import class_folders
from tests.recipes import TINY_CNN, TINY_MOBILENET, as_options

runner = CliRunner()
TINY = as_options({**TINY_MOBILENET, "train.fine_tune_epochs": 0})


@pytest.mark.parametrize("command", sorted(c.name for c in app.registered_commands))
def test_every_command_has_help_with_an_example(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Example: edgeclf " + command in " ".join(result.output.split())


def _one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _error_cases(tmp_path):
    one = class_folders(tmp_path / "one", ["bag"], 6)
    empty = tmp_path / "empty"
    empty.mkdir()
    good = class_folders(tmp_path / "good", ["bag", "sneaker"], 6)
    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text("model:\n  nmae: mobilenet_v2\n")
    return {
        "one class": ([str(one)], ["found 1 class folder(s) with images (bag); need at least 2"]),
        "empty": ([str(empty)], [f"data folder {empty} is empty"]),
        "missing": ([str(tmp_path / "nope")], ["does not exist"]),
        "image size 7": ([str(good), "--image-size", "7"], ["--image-size 7", "32"]),
        "unknown key": ([str(good), "--config", str(bad_cfg)], ["bad.yaml", "unknown key 'model.nmae'"]),
        "bad weights": ([str(good), "--weights", "nowhere.h5"], ["--weights nowhere.h5", "no such file"]),
        "bad model": ([str(good), "--model", "resnet"], ["--model 'resnet'"]),
    }


@pytest.mark.parametrize(
    "case", ["one class", "empty", "missing", "image size 7", "unknown key", "bad weights", "bad model"]
)
def test_errors_are_one_line_and_leave_no_run(tmp_path, case):
    args, fragments = _error_cases(tmp_path)[case]
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", *args, "--out", str(out)])
    _one_line_error(result, *fragments)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run")]


def test_error_in_a_real_process_goes_to_stderr_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "edgeclf", "train", str(tmp_path / "nope"), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: data folder {tmp_path / 'nope'} does not exist"]
    assert not (tmp_path / "run").exists()


def test_cli_options_override_the_config_file(tmp_path, monkeypatch):
    """--config FILE beats configs/default.yaml and options beat both; what train receives is the
    resolved config (train is replaced here: checking options must not train)."""
    import edgeclf.training.train

    data = class_folders(tmp_path / "data", ["bag", "sneaker"], 8)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data:\n  image_size: 48\n  batch_size: 4\nmodel:\n  name: small_cnn\n")
    received = {}

    def fake_train(dataset, out, config, *, overwrite=False):
        received.update(classes=dataset.classes, config=config)
        return edgeclf.training.train.TrainResult(out, dataset.classes, 1, 0.5, 1.0, "random", 0.1)

    monkeypatch.setattr(edgeclf.training.train, "train", fake_train)
    result = runner.invoke(
        app, ["train", str(data), "--out", str(tmp_path / "run"), "--config", str(cfg), *TINY, "--seed", "4"]
    )
    assert result.exit_code == 0, result.output
    resolved = received["config"]
    assert resolved.model.name == "small_cnn"  # from the file
    assert (resolved.data.image_size, resolved.data.batch_size, resolved.seed) == (32, 8, 4)  # the options won
    assert (resolved.model.alpha, resolved.model.weights, resolved.train.epochs) == (0.35, "none", 1)
    assert received["classes"] == ["bag", "sneaker"] and "done in" in result.output
    assert "bag" in result.output and "total" in result.output  # the dataset summary table


@pytest.mark.slow
def test_cli_trains_and_saves_the_resolved_config(tmp_path):
    data = class_folders(tmp_path / "data", ["bag", "sneaker"], 8)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data:\n  image_size: 48\n  batch_size: 4\nmodel:\n  name: small_cnn\n")
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(data), "--out", str(out), "--config", str(cfg), *TINY, "--seed", "4"])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "metadata.json").read_text())
    assert saved["model"]["name"] == "small_cnn" and saved["model"]["input"]["shape"] == [None, 32, 32, 3]
    assert "config.yaml" in {p.name for p in out.iterdir()}
    text = (out / "config.yaml").read_text()
    assert "batch_size: 8" in text and "seed: 4" in text  # CLI beat the file
    assert "done in" in result.output
    again = runner.invoke(app, ["train", str(data), "--out", str(out), *TINY])
    _one_line_error(again, "already holds a run; pass --overwrite")


def test_runtime_side_imports_without_tensorflow():
    code = (
        "import sys, edgeclf.cli, edgeclf.core.images, edgeclf.data.dataset, edgeclf.core.config, edgeclf.runtime, "
        "edgeclf.core.run_directory, edgeclf.device.signals, edgeclf.device.predict, edgeclf.device.serve, "
        "edgeclf.device.watch, edgeclf.device.unpack; "
        "print('tensorflow' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"


def test_out_inside_the_data_folder_and_data_inside_out_are_refused(tmp_path):
    good = class_folders(tmp_path / "good", ["bag", "sneaker"], 6)
    inside = runner.invoke(app, ["train", str(good), "--out", str(good / "run")])
    _one_line_error(inside, f"--out {good / 'run'}: inside the data folder", "read as data")
    same = runner.invoke(app, ["train", str(good), "--out", str(good)])
    _one_line_error(same, "inside the data folder")
    around = runner.invoke(app, ["train", str(good), "--out", str(tmp_path), "--overwrite"])
    _one_line_error(around, f"--out {tmp_path}: holds the data folder")
    assert sorted(p.name for p in good.iterdir()) == ["bag", "sneaker"]  # nothing written into the data


def test_help_text_is_literal_for_every_command():
    """Rich ate `[openvino]` as markup, so --help showed `pip install 'edgeclf'`: the by-name install
    the README forbids (issue 21). Every bracketed word of every option's help must be shown."""
    import re

    import typer.main

    from edgeclf.cli import app

    group = typer.main.get_command(app)
    commands = [(name, cmd) for name, cmd in group.commands.items()]
    commands += [(f"data {n}", c) for n, c in group.commands["data"].commands.items()]
    checked = 0
    for name, command in commands:
        if not hasattr(command, "params"):
            continue
        shown = " ".join(CliRunner().invoke(app, [*name.split(), "--help"], terminal_width=200).output.split())
        shown = re.sub(r"\s*│\s*", " ", shown)
        for param in command.params:
            for token in re.findall(r"\S*\[[^\]\s]+\]\S*", getattr(param, "help", None) or ""):
                assert token.strip(".,;:()") in shown, f"{name} --help lost {token!r}"
                checked += 1
    assert checked >= 5  # predict, watch, serve, bench, evaluate name edgeclf[openvino]


HOSTILE = {
    "ESC": "\x1b",
    "CSI": "\x1b[2J\x1b[H",
    "OSC": "\x1b]0;owned\x07",
    "C1": "\x9b31m",
    "RLO": "\u202e",
    "newline": "\n",
    "CR": "\r",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_printable_writes_each_control_as_a_visible_escape(kind):
    from edgeclf.core.printable import printable

    shown = printable(f"a{HOSTILE[kind]}b.png")
    assert shown.isprintable() and "\u202e" not in shown and shown.startswith("a\\") and shown.endswith("b.png")
    assert printable("café 猫 plain.png") == "café 猫 plain.png"


def test_hostile_file_names_reach_the_terminal_escaped(tiny_run, tmp_path, monkeypatch):
    """Before: ESC/OSC sequences, U+202E and newlines in file names reached the terminal raw in
    predict's table and watch's text lines (a name could clear the screen or forge a line)."""
    import shutil

    from edgeclf.core.run_directory import Run

    dataset = Run.open(tiny_run).dataset
    source = dataset.root / dataset.split("test")[0].path
    folder = tmp_path / "in"
    folder.mkdir()
    for kind, chars in HOSTILE.items():
        shutil.copy(source, folder / f"{kind}{chars}x.png")
    (folder / "broken\x1b[31m.png").write_bytes(b"not an image")  # an error row names it too
    monkeypatch.chdir(folder)  # short names: the table does not cut them
    result = CliRunner().invoke(app, ["predict", str(tiny_run), "."])
    assert result.exit_code == 0, result.output
    for chars in ("\x1b", "\x9b", "\u202e", "\r"):  # newlines are the table's own; a name's is escaped
        assert chars not in result.output
    assert "CSI\\x1b[2J\\x1b[Hx.png" in result.output and "RLO\\u202ex.png" in result.output
    assert "newline\\nx.png" in result.output and "broken\\x1b[31m.png" in result.output


def test_an_error_line_naming_a_hostile_path_is_one_printable_line(tmp_path):
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "gone\x1b]0;x\x07\nforged"), str(tmp_path)])
    assert result.exit_code == 2
    assert (
        result.output.count("\n") == 1
        and "\x1b" not in result.output
        and "gone\\x1b]0;x\\x07\\nforged" in result.output
    )


def test_an_over_long_path_is_one_error_line(tmp_path):
    """Before: an over-long --out gave an ENAMETOOLONG traceback."""
    data = class_folders(tmp_path / "d", ["bag", "sneaker"], 3)
    result = CliRunner().invoke(app, ["data", "pack", str(data), "--out", str(tmp_path / ("n" * 300) / "pack")])
    assert result.exit_code == 2 and result.output.count("error:") == 1, result.output
    assert "File name too long" in result.output and "Traceback" not in result.output


def test_watch_lines_and_stage_messages_escape_hostile_names(capsys):
    """watch's text mode and the stage messages of train and data pack (a skipped file's name in a
    warning) print through the same helper."""
    import logging

    from edgeclf.cli import render
    from edgeclf.cli._common import show_stage_messages

    render.watch_line({"image": "in/\x1b]0;owned\x07\u202ex.png", "label": "bag", "probability": 0.9, "invoke_ms": 1.0})
    render.watch_line({"image": "in/a\rb\nforged: bag 1.000.png", "error": "not an image"})
    show_stage_messages()
    logging.getLogger("edgeclf.data.dataset").warning("data folder d: skipped bag/\x1b[2Jx.png (not an image)")
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\r" not in out
    assert out.count("\n") == 3, out
    assert "in/\\x1b]0;owned\\x07\\u202ex.png: bag 0.900" in out and "in/a\\rb\\nforged" in out
    assert "skipped bag/\\x1b[2Jx.png" in out


def test_json_output_routes_messages_for_its_own_command_only():
    """messages_to_stderr (predict/watch --json) is one command's choice: the next command of the
    same process (a test session, a program driving the CLI) prints its messages on stdout again."""
    from edgeclf.cli import _common

    _common.messages_to_stderr()
    assert _common._messages[0] is _common.err_console
    _common.show_stage_messages()  # what every command runs first (user_errors)
    assert _common._messages[0] is _common.console


LIBRARY_NOISE = ("tensorflow", "absl", "onednn", "cuda", "xnnpack", "userwarning", "fully_quantize", "e0000", "w0000")


@pytest.mark.slow
def test_the_console_holds_only_edgeclf_lines(tmp_path):
    """train, qat and export in real processes with no TF_* variable set: stderr is empty and stdout
    holds none of TensorFlow's, absl's, LiteRT's or the converters' own lines (before issue 23:
    "Could not find cuda drivers", "oneDNN custom operations are on", the converter's UserWarning,
    "Created TensorFlow Lite XNNPACK delegate"); --verbose shows the stages' timings."""
    import os

    data = class_folders(tmp_path / "data", ["bag", "sneaker", "trouser"], 20)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "CUDA_"))}
    run = tmp_path / "run"
    commands = [
        ["train", str(data), "--out", str(run), *as_options(TINY_CNN, settable_only=True)],
        ["qat", str(run), "--epochs", "1"],
        ["export", str(run), "--int8", "--formats", "tflite,onnx"],
    ]
    for args in commands:
        proc = subprocess.run([sys.executable, "-m", "edgeclf", *args], capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stderr == "", f"edgeclf {args[0]} wrote to stderr:\n{proc.stderr}"
        noisy = [line for line in proc.stdout.splitlines() if any(n in line.lower() for n in LIBRARY_NOISE)]
        assert not noisy, f"edgeclf {args[0]}: library lines on the console: {noisy}"
    verbose = subprocess.run(
        [sys.executable, "-m", "edgeclf", "export", str(run), "--formats", "tflite", "--verbose"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert verbose.returncode == 0 and "export: " in verbose.stdout and "tflite-fp32: convert" in verbose.stdout


def test_help_lists_each_command_on_one_line():
    from edgeclf.cli import COMMANDS

    result = runner.invoke(app, ["--help"], terminal_width=80)
    lines = result.output.splitlines()
    for name, (_, summary) in COMMANDS.items():
        (line,) = [line for line in lines if line.strip().startswith(name + " ")]
        assert line.strip().endswith(summary), line
