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
from edgeclf.runtime.answers import answer, decode_timed
from edgeclf.runtime.classifier import Classifier
from edgeclf.signals import StopSignal

MAX_BYTES = 20 * 1024 * 1024  # default body limit (serve.max_body_bytes); larger bodies get 413 unread


class BadRequest(Exception):
    """A request the handler answers with an error status and a one-line JSON error."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


class PredictHandler(BaseHTTPRequestHandler):
    """/health and /predict for one classifier; make_server() sets the class attributes."""

    classifier: Classifier
    top_k: int = 5
    max_bytes: int = MAX_BYTES
    log: Callable[[str], None] | None = None

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if urlparse(self.path).path != "/health":
            return self._reply(HTTPStatus.NOT_FOUND, {"error": "GET /health, or POST an image to /predict"})
        info = self.classifier.info
        health = {"artifact": info.name, "engine": self.classifier.engine, "labels": info.labels,
                  "image_size": info.image_size}  # fmt: skip
        self._reply(HTTPStatus.OK, health)

    def do_POST(self) -> None:  # noqa: N802
        url = urlparse(self.path)
        if url.path != "/predict":
            return self._reply(HTTPStatus.NOT_FOUND, {"error": "POST the image file's bytes to /predict"})
        try:
            k = self._requested_top_k(url.query)
            body = self._body()
            pixels, decode_ms = decode_timed(io.BytesIO(body), self.classifier.info.image_size)
        except BadRequest as exc:
            return self._reply(exc.status, {"error": str(exc)})
        except ImageError as exc:
            return self._reply(HTTPStatus.BAD_REQUEST, {"error": f"not a usable image: {exc}"})
        self._reply(HTTPStatus.OK, answer(self.classifier, pixels, k, decode_ms))

    def _requested_top_k(self, query: str) -> int:
        try:
            k = int(parse_qs(query).get("top_k", [self.top_k])[0])
        except ValueError:
            k = 0
        if k < 1:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "top_k must be a positive integer")
        return k

    def _body(self) -> bytes:
        """The request body, refused before it is read when it is empty or over max_bytes."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length <= 0:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "empty body: POST the image file's bytes")
        if length > self.max_bytes:
            self.close_connection = True
            raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {self.max_bytes} bytes")
        return self.rfile.read(length)

    def _reply(self, status: HTTPStatus, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
        if self.log:
            self.log(f"{self.address_string()} {format % args}")


def make_server(
    classifier: Classifier,
    host: str = "127.0.0.1",
    port: int = 8080,
    top_k: int = 5,
    log: Callable[[str], None] | None = None,
    max_bytes: int = MAX_BYTES,
) -> HTTPServer:
    """An HTTPServer bound to (host, port) answering /predict and /health; port 0 picks a free one.
    Raises OSError when it cannot listen there."""
    settings = {
        "classifier": classifier,
        "top_k": top_k,
        "max_bytes": max_bytes,
        "log": staticmethod(log) if log else None,
    }
    return HTTPServer((host, port), type("Handler", (PredictHandler,), settings))


def serve(server: HTTPServer, stop: StopSignal) -> None:
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
