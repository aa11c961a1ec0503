"""`edgeclf serve`: a small HTTP endpoint (POST an image, get JSON top-k)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgeclf.cli._common import console, user_errors

HELP = (
    "Long-running device mode over HTTP: POST an image file's bytes to /predict[?top_k=N] and get JSON top-k "
    "with latency; GET /health describes the model. One request at a time; stops cleanly on SIGINT/SIGTERM."
)
EXAMPLE = (
    "Example: edgeclf serve export/ --host 0.0.0.0 --port 8080, then "
    "curl --data-binary @photo.jpg 'http://pi.local:8080/predict?top_k=3'"
)


@user_errors
def command(
    model: Path = typer.Argument(..., help="Run directory, export folder, or a .tflite/.onnx file."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8080, help="TCP port (0: any free port)."),
    artifact: Optional[str] = typer.Option(None, help="Artifact name from artifacts.json."),
    top_k: int = typer.Option(5, "--top-k", help="Labels per answer unless the request asks ?top_k=N."),
    threads: Optional[int] = typer.Option(None, help="Inference threads."),
    quiet: bool = typer.Option(False, "--quiet", help="Do not log each request."),
) -> None:
    from edgeclf.errors import EdgeclfError
    from edgeclf.predict import check_top_k
    from edgeclf.runtime.open import open_classifier
    from edgeclf.serve import make_server, serve
    from edgeclf.watch import Stop

    check_top_k(top_k)
    classifier = open_classifier(model, artifact, threads)
    try:
        server = make_server(
            classifier, host, port, top_k, log=None if quiet else lambda line: console.print(line, style="dim")
        )
    except OSError as exc:
        raise EdgeclfError(
            f"--host {host} --port {port}: cannot listen ({exc.strerror}); choose another port"
        ) from None
    bound_host, bound_port = server.server_address[:2]
    console.print(
        f"serving {classifier.info.name} on http://{bound_host}:{bound_port}/predict; Ctrl-C to stop", style="dim"
    )
    serve(server, Stop())
    console.print("stopped", style="dim")
