"""`edgeclf serve`: a small HTTP endpoint on the device. POST an image file's bytes to /predict
(optionally ?top_k=N) and get JSON top-k; GET /health describes the model. Standard library only
(http.server's ThreadingHTTPServer), TensorFlow-free; stops within a second on SIGINT/SIGTERM.

Bounded as a service (each bound is a serve.* key of configs/default.yaml):
- a client has serve.timeout seconds for a whole request, headers and body (every read is given
  what is left of that deadline, so a client sending one byte a second is dropped when it runs
  out), and a kept-alive connection may idle that long before its next request;
- at most serve.max_connections connections are open; beyond that a new one is answered 503 at
  once and closed; the listen backlog (serve.backlog) absorbs bursts of connects;
- decoding runs in the connection threads under a DecodeBudget: at most serve.decode_memory_mb of
  pixels are decoded at once (503 when a decode waited serve.timeout for room), and no image over
  predict.max_pixels is decoded at all (400, from the header);
- the engine call is serialised by one lock (an interpreter is not safe to call from two threads).
Content-Length must be a plain decimal within serve.max_body_bytes: anything else is answered
400/411/413 with a JSON error before a byte of the body is read; chunked bodies are refused (411).
HTTP/1.1 keep-alive is supported (a client saves a connect per request; the deadline bounds idling).

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
import socket
import sys
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from edgeclf.core.config import PredictConfig, ServeConfig
from edgeclf.core.errors import ConfigError
from edgeclf.core.images import ImageError, NotAdmitted
from edgeclf.core.printable import printable
from edgeclf.device.signals import StopSignal
from edgeclf.runtime.answers import answer, decode_timed
from edgeclf.runtime.classifier import Classifier
from edgeclf.runtime.decode_budget import DecodeBudget, capacity_pixels


class BadRequest(Exception):
    """A request the handler answers with an error status and a one-line JSON error."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


class _DeadlineReader(io.RawIOBase):
    """The connection's reads, each given only what is left of the handler's deadline (socket
    timeouts are per recv: alone they let a client send a byte a second forever)."""

    def __init__(self, connection: socket.socket, handler: PredictHandler):
        self.connection, self.handler = connection, handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self.handler.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request deadline passed")
        self.connection.settimeout(left)
        return self.connection.recv_into(buffer)


class PredictHandler(BaseHTTPRequestHandler):
    """/health and /predict for one classifier; make_server() sets the class attributes."""

    protocol_version = "HTTP/1.1"  # keep-alive unless the client says Connection: close
    # make_server sets these from serve.* and predict.* (configs/default.yaml)
    classifier: Classifier
    top_k: int
    max_bytes: int
    max_pixels: int
    log: Callable[[str], None] | None = None
    timeout: float  # seconds for a whole request (headers and body); also each write's timeout
    inference: threading.Lock  # one engine call at a time
    budget: DecodeBudget  # pixels decoded at once across the connection threads
    token: str | None = None  # shared secret every request must present, when set
    deadline: float = 0.0

    def setup(self) -> None:
        super().setup()
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self))

    def handle_one_request(self) -> None:
        self.deadline = time.monotonic() + self.timeout  # for this request's line, headers and body
        super().handle_one_request()

    def _read_done(self) -> None:
        """The request is read (or refused): writes get the full timeout again, whatever the deadline
        left. _reply, the one writer, calls it; the next request re-arms the deadline."""
        self.deadline = float("inf")
        self.connection.settimeout(self.timeout)

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
        health = {
            "artifact": info.name,
            "engine": self.classifier.engine,
            "labels": info.labels,
            "image_size": info.image_size,
        }
        self._reply(HTTPStatus.OK, health)

    def do_POST(self) -> None:  # noqa: N802
        if not self._authorized():
            return
        url = urlparse(self.path)
        if url.path != "/predict":
            self.close_connection = True  # its body is not read
            return self._reply(HTTPStatus.NOT_FOUND, {"error": "POST the image file's bytes to /predict"})
        try:
            k = self._requested_top_k(url.query)
            body = self._body()
            pixels, decode_ms = decode_timed(
                io.BytesIO(body), self.classifier.info.image_size, self.max_pixels, self.budget.admit
            )
        except BadRequest as exc:
            return self._reply(exc.status, {"error": str(exc)})
        except ImageError as exc:
            return self._reply(HTTPStatus.BAD_REQUEST, {"error": f"not a usable image: {exc}"})
        except NotAdmitted as exc:
            return self._reply(HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"busy ({exc}): retry"})
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
            raise BadRequest(HTTPStatus.REQUEST_TIMEOUT, f"the request took over {self.timeout:g} s") from None
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
        self._read_done()
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
        if self.log:  # the request line is the client's: its control characters are escaped
            self.log(printable(f"{self.address_string()} {format % args}"))


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with a cap on open connections (503 beyond it, sent without reading the
    request), a listen backlog of our choosing and one log line, not a traceback, for a connection
    that fails mid-way (a client that hung up while we answered)."""

    daemon_threads = True  # a stalled client's thread does not hold the process
    block_on_close = False  # server_close() does not wait for the connection threads
    BUSY = (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
        b"Connection: close\r\nContent-Length: 56\r\n\r\n"
        b'{"error": "too many open connections: retry in a while"}'
    )

    def __init__(self, address, handler, max_connections: int, backlog: int, log: Callable[[str], None] | None):
        self.request_queue_size = backlog  # listen()'s backlog, set before the socket listens
        self.max_connections = max_connections
        self.open_connections = 0
        self.refused_connections = 0
        self._count = threading.Lock()
        self._log = log
        super().__init__(address, handler)

    def process_request(self, request, client_address) -> None:
        with self._count:
            full = self.open_connections >= self.max_connections
            self.open_connections += not full
            self.refused_connections += full
        if full:
            return self._refuse(request)
        try:
            super().process_request(request, client_address)  # starts the connection's thread
        except BaseException:
            with self._count:
                self.open_connections -= 1
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._count:
                self.open_connections -= 1

    def _refuse(self, request: socket.socket) -> None:
        try:
            request.setblocking(False)
            try:
                request.recv(65536)  # what has arrived: closing over unread data would reset the 503 away
            except BlockingIOError:
                pass
            request.send(self.BUSY)
        except OSError:
            pass
        self.shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        if self._log:
            exc = sys.exc_info()[1]
            self._log(f"{client_address[0]} connection ended: {type(exc).__name__}: {exc}")


def make_server(
    classifier: Classifier,
    options: ServeConfig,
    answers: PredictConfig,
    log: Callable[[str], None] | None = None,
    token: str | None = None,
) -> Server:
    """A threaded HTTP server bound to (options.host, options.port) answering /predict and /health
    (port 0 picks a free one), bounded by `options` (serve.*); answers.top_k and answers.max_pixels
    (predict.*) shape each answer. Settings come from load_config(): a run's config.yaml or the
    defaults. Raises ConfigError for an unusable token, OSError when it cannot listen there."""
    check_token(token)
    settings = {
        "classifier": classifier,
        "top_k": answers.top_k,
        "max_bytes": options.max_body_bytes,
        "max_pixels": answers.max_pixels,
        "timeout": options.timeout,
        "inference": threading.Lock(),
        "budget": DecodeBudget(capacity_pixels(options.decode_memory_mb, answers.max_pixels), options.timeout),
        "token": token,
        "log": staticmethod(log) if log else None,
    }
    handler = type("Handler", (PredictHandler,), settings)
    return Server((options.host, options.port), handler, options.max_connections, options.backlog, log)


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


def serve(server: Server, stop: StopSignal) -> None:
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
