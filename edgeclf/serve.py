"""`edgeclf serve`: a small HTTP endpoint on the device. POST an image file's bytes to /predict
(optionally ?top_k=N) and get JSON top-k; GET /health describes the model. Standard library only
(http.server), one request at a time, TensorFlow-free; stops cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

from edgeclf.images import ImageError
from edgeclf.predict import classify, decode
from edgeclf.runtime.classifier import Classifier
from edgeclf.watch import Stop

MAX_BYTES = 20 * 1024 * 1024  # larger bodies are refused with 413 before they are read


def make_server(
    classifier: Classifier,
    host: str = "127.0.0.1",
    port: int = 8080,
    top_k: int = 5,
    log: Callable[[str], None] | None = None,
) -> HTTPServer:
    """An HTTPServer bound to (host, port) answering /predict and /health; port 0 picks a free one."""

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: HTTPStatus, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if urlparse(self.path).path != "/health":
                return self._reply(HTTPStatus.NOT_FOUND, {"error": "GET /health, or POST an image to /predict"})
            info = classifier.info
            self._reply(
                HTTPStatus.OK,
                {
                    "artifact": info.name,
                    "engine": classifier.engine,
                    "labels": info.labels,
                    "image_size": info.image_size,
                },
            )

        def do_POST(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            if url.path != "/predict":
                return self._reply(HTTPStatus.NOT_FOUND, {"error": "POST the image file's bytes to /predict"})
            try:
                k = int(parse_qs(url.query).get("top_k", [top_k])[0])
                if k < 1:
                    raise ValueError
            except ValueError:
                return self._reply(HTTPStatus.BAD_REQUEST, {"error": "top_k must be a positive integer"})
            length = int(self.headers.get("Content-Length") or 0)
            if length == 0:
                return self._reply(HTTPStatus.BAD_REQUEST, {"error": "empty body: POST the image file's bytes"})
            if length > MAX_BYTES:
                self.close_connection = True
                return self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"body over {MAX_BYTES} bytes"})
            body = self.rfile.read(length)
            try:
                pixels, decode_ms = decode(io.BytesIO(body), classifier.info.image_size)
            except ImageError as exc:
                return self._reply(HTTPStatus.BAD_REQUEST, {"error": f"not a usable image: {exc}"})
            self._reply(HTTPStatus.OK, classify(classifier, pixels, k, decode_ms))

        def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
            if log:
                log(f"{self.address_string()} {format % args}")

    return HTTPServer((host, port), Handler)


def serve(server: HTTPServer, stop: Stop) -> None:
    """Answer requests until `stop` is set (SIGINT/SIGTERM), then close the socket."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
