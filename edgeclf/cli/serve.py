"""`edgeclf serve`: a small HTTP endpoint (POST an image, get JSON top-k)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import typer

from edgeclf.cli._common import ENGINE_HELP, console, integrity_option, overrides, setting, user_errors

HELP = (
    "Long-running device mode over HTTP: POST an image file's bytes to /predict[?top_k=N] and get JSON top-k "
    "with latency; GET /health describes the model. "
    "Bounded per request, connection and decode (serve.* in configs/default.yaml); stops cleanly on SIGINT/SIGTERM."
)
EXAMPLE = (
    "Example: edgeclf serve export/ --host 0.0.0.0 --port 8080, then "
    "curl --data-binary @photo.jpg 'http://pi.local:8080/predict?top_k=3'"
)


@user_errors
def command(
    model: Path = typer.Argument(..., help="Run directory, export folder, or a .tflite/.onnx file."),
    host: str | None = setting("serve.host", "Address to listen on (0.0.0.0: every interface)."),
    port: int | None = setting("serve.port", "TCP port (0: any free port)."),
    artifact: str | None = typer.Option(None, help="Artifact name from artifacts.json."),
    top_k: int | None = setting("predict.top_k", "Labels per answer unless the request asks ?top_k=N.", "--top-k"),
    threads: int | None = setting("predict.threads", "Inference threads (0: every core)."),
    engine: str | None = setting("predict.engine", ENGINE_HELP),
    integrity: bool = integrity_option(),
    timeout: float | None = setting(
        "serve.timeout",
        "Seconds a client has to send a whole request (headers and body), and a kept-alive connection may idle.",
    ),
    max_connections: int | None = setting("serve.max_connections", "Open connections; beyond them: 503."),
    backlog: int | None = setting("serve.backlog", "Connects the kernel queues while every thread is busy."),
    decode_memory_mb: str | None = setting(
        "serve.decode_memory_mb",
        "Memory for images decoded at once, in MB (auto: a quarter of what is free).",
        convert=lambda v: v if v == "auto" else int(v) if v.isdigit() else v,
    ),
    max_pixels: int | None = setting("predict.max_pixels", "Larger images are refused from their header."),
    quiet: bool = typer.Option(False, "--quiet", help="Do not log each request."),
    token: str | None = typer.Option(
        None,
        envvar="EDGECLF_SERVE_TOKEN",
        show_default=False,
        help="Shared secret: every request must send 'Authorization: Bearer TOKEN' (or set EDGECLF_SERVE_TOKEN). "
        "Use it whenever --host is not a loopback address; it authenticates, it does not encrypt.",
    ),
) -> None:
    from edgeclf.core.errors import EdgeclfError
    from edgeclf.device.serve import check_token, make_server, serve
    from edgeclf.device.settings import device_settings
    from edgeclf.device.signals import StopSignal
    from edgeclf.runtime.open import open_classifier

    if token is None and "EDGECLF_SERVE_TOKEN" in os.environ:  # set but empty: Click reads it as unset
        token = os.environ["EDGECLF_SERVE_TOKEN"]
    check_token(token)  # before the model is opened
    values, names = overrides(command, locals())
    cfg = device_settings(model, values, names)
    classifier = open_classifier(
        model, artifact, cfg.predict.threads, cfg.predict.kernels, engine=cfg.predict.engine, integrity=integrity
    )
    log = None if quiet else lambda line: console.print(line, style="dim", markup=False)
    try:
        server = make_server(classifier, cfg.serve, cfg.predict, log, token)
    except OSError as exc:
        where = f"--host {cfg.serve.host} --port {cfg.serve.port}"
        raise EdgeclfError(f"{where}: cannot listen ({exc.strerror}); choose another port") from None
    bound_host, bound_port = server.server_address[:2]
    if not token and not ipaddress.ip_address(bound_host).is_loopback:
        console.print(
            f"warning: serving on {bound_host} without a token: anyone who can reach this port can use the model "
            "(--token, or EDGECLF_SERVE_TOKEN)",
            style="yellow",
            markup=False,
        )
    console.print(
        f"serving {classifier.info.name} on http://{bound_host}:{bound_port}/predict; Ctrl-C to stop",
        style="dim",
        markup=False,
    )
    serve(server, StopSignal())
    console.print("stopped", style="dim")
