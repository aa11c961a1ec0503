"""`edgeclf watch`: classify new images in a folder (or camera frames) until stopped."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from edgeclf.cli._common import ENGINE_HELP, console, integrity_option, overrides, setting, user_errors

HELP = (
    "Long-running device mode: classify every new image dropped into FOLDER (or frames from --camera N with "
    "OpenCV), one line per image with label, probability and latency; stops cleanly on SIGINT/SIGTERM."
)
EXAMPLE = "Example: edgeclf watch export/ incoming/ --json"


@user_errors
def command(
    model: Path = typer.Argument(..., help="Run directory, export folder, or a .tflite/.onnx file."),
    folder: Path | None = typer.Argument(None, help="Folder to watch for new images."),
    camera: int | None = typer.Option(None, help="Camera index (OpenCV) instead of a folder."),
    artifact: str | None = typer.Option(None, help="Artifact name from artifacts.json."),
    interval: float | None = setting("watch.interval", "Seconds between folder scans."),
    existing: bool = typer.Option(False, "--existing", help="Also classify the images already in the folder."),
    state: Path | None = typer.Option(
        None, help="State file of the contents already reported (default FOLDER/.edgeclf-watch.json)."
    ),
    reprocess: bool = typer.Option(False, "--reprocess", help="Report contents the state file lists again."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    threads: int | None = setting("predict.threads", "Inference threads (0: every core)."),
    engine: str | None = setting("predict.engine", ENGINE_HELP),
    integrity: bool = integrity_option(),
) -> None:
    from edgeclf.cli import render
    from edgeclf.cli._common import err_console, messages_to_stderr
    from edgeclf.core.errors import EdgeclfError
    from edgeclf.device.settings import device_settings
    from edgeclf.device.signals import StopSignal
    from edgeclf.device.watch import watch_camera, watch_folder
    from edgeclf.runtime.open import open_classifier

    if (folder is None) == (camera is None):
        raise EdgeclfError("give a FOLDER to watch or --camera N (one of them)")
    values, names = overrides(command, locals())
    cfg = device_settings(model, values, names)
    human = console
    if as_json:  # stdout carries JSON lines only: warnings (the model's too) and status lines go to stderr
        messages_to_stderr()
        human = err_console
    classifier = open_classifier(
        model, artifact, cfg.predict.threads, cfg.predict.kernels, engine=cfg.predict.engine, integrity=integrity
    )

    def emit(result: dict) -> None:
        if as_json:
            print(json.dumps(result), flush=True)
        else:
            render.watch_line(result)

    stop = StopSignal()
    source = folder if folder is not None else f"camera {camera}"
    human.print(f"watching {source} with {classifier.info.name}; Ctrl-C to stop", style="dim", markup=False)
    if folder is not None:
        count = watch_folder(
            classifier, folder, emit, cfg.watch, cfg.predict.max_pixels, stop, existing, state, reprocess
        )
    else:
        count = watch_camera(classifier, camera, emit, stop=stop)
    human.print(f"stopped after {count} image(s)", style="dim")
