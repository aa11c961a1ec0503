"""`edgeclf serve`: a small HTTP endpoint on the device. POST an image file's bytes to /predict
(optionally ?top_k=N) and get JSON top-k; GET /health describes the model. Standard library only
(http.server's ThreadingHTTPServer), TensorFlow-free; stops within a second on SIGINT/SIGTERM.

Every connection has its own thread and a socket timeout (serve.timeout): a client that stalls
mid-request is dropped when it runs out, and cannot hold up another client or the shutdown (the
threads are daemons and are not waited for). Reading and decoding run concurrently; the engine
call is serialised by one lock (an interpreter is not safe to call from two threads at once).
Content-Length must be a plain decimal within serve.max_body_bytes: anything else is answered
400/411/413 with a JSON error before a byte of the body is read; chunked bodies are refused (411).

With a token (--token, or EDGECLF_SERVE_TOKEN), every request must carry `Authorization: Bearer
TOKEN` (compared in constant time) or gets 401 before anything else is read. It keeps other hosts
on the network from using the model or reading its labels; it does not encrypt anything (the
token and the images cross the network in clear: put TLS in front, e.g. a reverse proxy, where
that matters) and it is one shared secret, not per-user access control.
"""

from __future__ import annotations

import hmac
import io
import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from edgeclf.errors import ConfigError
from edgeclf.images import ImageError
from edgeclf.runtime.answers import answer, decode_timed
from edgeclf.runtime.classifier import Classifier
from edgeclf.signals import StopSignal

MAX_BYTES = 20 * 1024 * 1024  # default body limit (serve.max_body_bytes); larger bodies get 413 unread
TIMEOUT = 10.0  # default seconds a connection may stay silent (serve.timeout)


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
    timeout = TIMEOUT  # socketserver sets it on the connection: reads and writes time out after it
    inference: threading.Lock  # one engine call at a time
    token: str | None = None  # shared secret every request must present, when set

    def _authorized(self) -> bool:
        """True without a token, or when the request presents it; else answers 401 (and closes)."""
        if not self.token:
            return True
        given = self.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode("utf-8", "replace"), f"Bearer {self.token}".encode()):
            return True
        self.close_connection = True
        self._reply(HTTPStatus.UNAUTHORIZED, {"error": "send the token: Authorization: Bearer TOKEN"})
        return False

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if not self._authorized():
            return
        if urlparse(self.path).path != "/health":
            return self._reply(HTTPStatus.NOT_FOUND, {"error": "GET /health, or POST an image to /predict"})
        info = self.classifier.info
        health = {"artifact": info.name, "engine": self.classifier.engine, "labels": info.labels,
                  "image_size": info.image_size}  # fmt: skip
        self._reply(HTTPStatus.OK, health)

    def do_POST(self) -> None:  # noqa: N802
        if not self._authorized():
            return
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
        with self.inference:
            result = answer(self.classifier, pixels, k, decode_ms)
        self._reply(HTTPStatus.OK, result)

    def _requested_top_k(self, query: str) -> int:
        try:
            k = int(parse_qs(query).get("top_k", [self.top_k])[0])
        except ValueError:
            k = 0
        if k < 1:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "top_k must be a positive integer")
        return k

    def _body(self) -> bytes:
        """The request body, refused before it is read unless Content-Length is one plain decimal
        within 1..max_bytes. A refused request's connection is closed (its body is never read)."""
        lengths = self.headers.get_all("Content-Length") or []
        asked_to_close = self.close_connection  # the client's Connection header, as http.server parsed it
        self.close_connection = True  # until the body is read, the stream cannot be trusted for another request
        if self.headers.get("Transfer-Encoding"):
            raise BadRequest(HTTPStatus.LENGTH_REQUIRED, "chunked bodies are not accepted: send Content-Length")
        if not lengths:
            raise BadRequest(HTTPStatus.LENGTH_REQUIRED, "Content-Length required: POST the image file's bytes")
        text = lengths[0].strip()
        if len(lengths) > 1 or not (text.isascii() and text.isdigit()) or len(text) > 12:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "Content-Length must be one non-negative decimal integer")
        length = int(text)
        if length == 0:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "empty body: POST the image file's bytes")
        if length > self.max_bytes:
            raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {self.max_bytes} bytes")
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            raise BadRequest(HTTPStatus.REQUEST_TIMEOUT, f"the body stalled for {self.timeout:g} s") from None
        if len(body) != length:
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"body ended after {len(body)} of {length} bytes")
        self.close_connection = asked_to_close
        return body

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line, a bad version, too many headers, an
        unsupported method) as the same one-line JSON as ours, always with a status line."""
        self.close_connection = True
        try:
            status = HTTPStatus(code)
        except ValueError:
            status = HTTPStatus.BAD_REQUEST
        self._reply(status, {"error": message or status.phrase})

    def _reply(self, status: HTTPStatus, body: dict) -> None:
        if self.request_version == "HTTP/0.9":  # a bare "GET /path" (or an unparsed line): answer with a status line
            self.request_version = "HTTP/1.1"
            self.close_connection = True
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
    timeout: float = TIMEOUT,
    token: str | None = None,
) -> ThreadingHTTPServer:
    """A threaded HTTP server bound to (host, port) answering /predict and /health; port 0 picks a
    free one. Raises ConfigError for an unusable token, OSError when it cannot listen there."""
    check_token(token)
    settings = {
        "classifier": classifier,
        "top_k": top_k,
        "max_bytes": max_bytes,
        "timeout": timeout,
        "inference": threading.Lock(),
        "token": token,
        "log": staticmethod(log) if log else None,
    }
    server = ThreadingHTTPServer((host, port), type("Handler", (PredictHandler,), settings))
    server.daemon_threads = True  # a stalled client's thread does not hold the process
    server.block_on_close = False  # server_close() does not wait for the connection threads
    return server


def check_token(token: str | None) -> None:
    """None (no authentication) or a usable secret: printable ASCII without spaces, so that a
    client can send it in a header. An empty token would silently turn authentication off, and a
    non-ASCII one could never match a header: both are refused (ConfigError)."""
    if token is None:
        return
    if not token:
        raise ConfigError(
            "--token: empty; give a secret, or leave --token and EDGECLF_SERVE_TOKEN unset to serve without one"
        )
    if not all(33 <= ord(ch) <= 126 for ch in token):
        raise ConfigError("--token: use printable ASCII characters without spaces (it travels in an HTTP header)")


def serve(server: ThreadingHTTPServer, stop: StopSignal) -> None:
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
