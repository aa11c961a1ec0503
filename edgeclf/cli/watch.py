"""`edgeclf watch`: classify new images in a folder (or camera frames) until stopped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from edgeclf.cli._common import console, user_errors

HELP = (
    "Long-running device mode: classify every new image dropped into FOLDER (or frames from --camera N with "
    "OpenCV), one line per image with label, probability and latency; stops cleanly on SIGINT/SIGTERM."
)
EXAMPLE = "Example: edgeclf watch export/ incoming/ --json"


@user_errors
def command(
    model: Path = typer.Argument(..., help="Run directory, export folder, or a .tflite/.onnx file."),
    folder: Optional[Path] = typer.Argument(None, help="Folder to watch for new images."),
    camera: Optional[int] = typer.Option(None, help="Camera index (OpenCV) instead of a folder."),
    artifact: Optional[str] = typer.Option(None, help="Artifact name from artifacts.json."),
    interval: float = typer.Option(0.5, help="Seconds between folder scans."),
    existing: bool = typer.Option(False, "--existing", help="Also classify the images already in the folder."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    threads: Optional[int] = typer.Option(None, help="Inference threads."),
) -> None:
    from edgeclf.errors import EdgeclfError
    from edgeclf.runtime.open import open_classifier
    from edgeclf.watch import Stop, watch_camera, watch_folder

    if (folder is None) == (camera is None):
        raise EdgeclfError("give a FOLDER to watch or --camera N (one of them)")
    classifier = open_classifier(model, artifact, threads)

    def emit(result: dict) -> None:
        if as_json:
            print(json.dumps(result), flush=True)
        elif "error" in result:
            console.print(f"{result['image']}: [red]{result['error']}[/]")
        else:
            console.print(
                f"{result['image']}: {result['label']} {result['probability']:.3f} (invoke {result['invoke_ms']:.2f} ms)"
            )

    stop = Stop()
    console.print(
        f"watching {folder if folder is not None else f'camera {camera}'} with {classifier.info.name}; Ctrl-C to stop",
        style="dim",
    )
    if folder is not None:
        count = watch_folder(classifier, folder, emit, interval, stop=stop, existing=existing)
    else:
        count = watch_camera(classifier, camera, emit, stop=stop)
    console.print(f"stopped after {count} image(s)", style="dim")
