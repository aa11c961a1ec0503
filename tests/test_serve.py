"""edgeclf serve as a long-running service: stalled clients, hostile headers, prompt shutdown."""

import json
import socket
import threading
import time
from contextlib import contextmanager

import pytest

from edgeclf.core.run_directory import Run
from edgeclf.device.serve import make_server, serve
from edgeclf.device.signals import StopSignal
from edgeclf.runtime.open import open_classifier
from tests.helpers import serve_settings

TIMEOUT = 1.0


@contextmanager
def running(server):
    """server answering in a thread for the block; shut down and closed after it."""
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def server(tiny_run):
    with running(
        make_server(open_classifier(tiny_run), *serve_settings(port=0, max_body_bytes=100_000, timeout=TIMEOUT))
    ) as server:
        yield server


def at_once(server, body: bytes, clients: int, wait: float) -> list[int]:
    """The statuses of `clients` POSTs of body sent at the same instant (a barrier releases them)."""
    statuses, barrier = [], threading.Barrier(clients)

    def client():
        barrier.wait()
        statuses.append(raw(server, post(body, f"Content-Length: {len(body)}\r\n"), wait=wait)[0])

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


@pytest.fixture
def image(tiny_run):
    dataset = Run.open(tiny_run).dataset
    return (dataset.root / dataset.split("test")[0].path).read_bytes()


def raw(server, data: bytes, wait: float = 5.0) -> tuple[int, dict]:
    """Send bytes as they are, read the whole answer: (status, JSON body)."""
    with socket.create_connection(server.server_address[:2], timeout=wait) as conn:
        conn.sendall(data)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def post(body: bytes, headers: str) -> bytes:
    return f"POST /predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n".encode() + body


def test_a_good_request_is_answered(server, image):
    status, body = raw(server, post(image, f"Content-Length: {len(image)}\r\n"))
    assert status == 200 and body["top_k"][0]["label"] in ("bag", "sneaker", "trouser")


@pytest.mark.parametrize(
    "headers, status, message",
    [
        ("", 411, "Content-Length required"),
        ("Content-Length: abc\r\n", 400, "one non-negative decimal integer"),
        ("Content-Length: -1\r\n", 400, "one non-negative decimal integer"),
        ("Content-Length: +5\r\n", 400, "one non-negative decimal integer"),
        ("Content-Length: 5\r\nContent-Length: 5\r\n", 400, "one non-negative decimal integer"),
        ("Content-Length: 99999999999999999999999\r\n", 400, "one non-negative decimal integer"),
        ("Content-Length: 0\r\n", 400, "empty body"),
        ("Content-Length: 100001\r\n", 413, "body over 100000 bytes"),
        ("Transfer-Encoding: chunked\r\n", 411, "chunked bodies are not accepted"),
    ],
)
def test_hostile_headers_get_a_json_error_before_the_body_is_read(server, headers, status, message):
    answer = raw(server, post(b"", headers))
    assert answer[0] == status and message in answer[1]["error"]


def test_a_short_body_is_refused_when_the_client_stops_sending(server, image):
    started = time.perf_counter()
    status, body = raw(server, post(image[:10], f"Content-Length: {len(image)}\r\n"))
    assert status == 408 and "the request took over 1 s" in body["error"]
    assert TIMEOUT <= time.perf_counter() - started < TIMEOUT + 3


def test_a_stalled_client_blocks_nobody_and_is_dropped(tiny_run, image):
    """Behaviour, not a stopwatch: the other request is answered while the stalled connection is
    still open (a 3 s deadline leaves a loaded machine room), then the stalled one is closed."""
    with running(make_server(open_classifier(tiny_run), *serve_settings(port=0, timeout=3.0))) as server:
        stalled = socket.create_connection(server.server_address[:2])
        stalled.sendall(b"POST /predict HTTP/1.1\r\nContent-Len")  # and nothing more
        status, _ = raw(server, post(image, f"Content-Length: {len(image)}\r\n"))
        stalled.setblocking(False)
        with pytest.raises(BlockingIOError):  # no EOF yet: it is still waiting for its deadline
            stalled.recv(1024)
        assert status == 200
        stalled.settimeout(3.0 + 5)
        assert stalled.recv(1024) == b""  # the server closed it when its deadline ran out
        stalled.close()


def test_concurrent_requests_all_get_the_same_answer(server, image):
    answers = []

    def one():
        answers.append(raw(server, post(image, f"Content-Length: {len(image)}\r\n")))

    threads = [threading.Thread(target=one) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(answers) == 16 and all(status == 200 for status, _ in answers)
    assert len({json.dumps(body["top_k"]) for _, body in answers}) == 1


def test_shutdown_is_prompt_with_a_client_holding_a_connection(tiny_run):
    server = make_server(open_classifier(tiny_run), *serve_settings(port=0, timeout=60))
    stop = StopSignal(signals=())
    thread = threading.Thread(target=serve, args=(server, stop))
    thread.start()
    stalled = socket.create_connection(server.server_address[:2])
    stalled.sendall(b"GET /health HTTP/1.1\r\n")  # an unfinished request, on a 60-second timeout
    time.sleep(0.2)
    started = time.perf_counter()
    stop.event.set()
    thread.join(5)
    assert not thread.is_alive() and time.perf_counter() - started < 1.0
    stalled.close()


def test_a_token_is_required_when_set(tiny_run, image):
    with running(
        make_server(open_classifier(tiny_run), *serve_settings(port=0, timeout=TIMEOUT), token="s3cret")
    ) as server:
        length = f"Content-Length: {len(image)}\r\n"
        assert raw(server, post(image, length))[0] == 401
        assert raw(server, post(image, length + "Authorization: Bearer wrong\r\n"))[0] == 401
        health = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        status, body = raw(server, health)
        assert status == 401 and "Authorization: Bearer TOKEN" in body["error"] and "labels" not in body
        assert raw(server, post(image, length + "Authorization: Bearer s3cret\r\n"))[0] == 200


def test_soak_with_a_stalled_and_a_slow_client_every_request_is_answered(server, image):
    """Bounded: 4 clients for 2 s on loopback, plus a client that stalls mid-request line and one that
    sends its body in pieces; tools/soak_serve.py runs the long version."""
    deadline = time.monotonic() + 2.0
    statuses, slow_statuses = [], []
    request = post(image, f"Content-Length: {len(image)}\r\n")

    def client():
        while time.monotonic() < deadline:
            statuses.append(raw(server, request)[0])

    def slow():
        while time.monotonic() < deadline:
            with socket.create_connection(server.server_address[:2], timeout=10) as conn:
                for i in range(0, len(request), 100):
                    conn.sendall(request[i : i + 100])
                    time.sleep(0.01)
                slow_statuses.append(int(conn.recv(64).split()[1]))

    stalled = socket.create_connection(server.server_address[:2])
    stalled.sendall(b"POST /predi")
    threads = [threading.Thread(target=client) for _ in range(4)] + [threading.Thread(target=slow)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    stalled.settimeout(TIMEOUT + 3)
    assert stalled.recv(64) == b""  # dropped once its timeout ran out
    stalled.close()
    assert len(statuses) >= 20 and set(statuses) == {200}
    assert slow_statuses and set(slow_statuses) == {200}


@pytest.mark.parametrize(
    "request_line",
    [b"GET /health HTTP/9.9\r\n\r\n", b"GET /predict\r\n\r\n", b"BREW /pot HTTP/1.1\r\n\r\n"],
)
def test_malformed_request_lines_get_a_status_line_and_json(server, request_line):
    """Regression tests for what the fuzzer found: http.server's own refusals (a bad version, an
    HTTP/0.9 request line) came back as an HTML page or a bare body without a status line."""
    with socket.create_connection(server.server_address[:2], timeout=5) as conn:
        conn.sendall(request_line)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.") and int(status_line.split()[1]) in (400, 404, 501, 505)
    assert "error" in json.loads(rest.partition(b"\r\n\r\n")[2])


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["--token", ""], {}, "--token: empty"),
        ([], {"EDGECLF_SERVE_TOKEN": ""}, "--token: empty"),
        (["--token", "sécret"], {}, "printable ASCII"),
        (["--token", "two words"], {}, "printable ASCII"),
    ],
)
def test_an_unusable_token_is_refused_at_start(tiny_run, monkeypatch, args, env, message):
    """An empty token silently turned authentication off; a non-ASCII one made every request an
    empty reply and a traceback while the server said "serving" (issue 21)."""
    from typer.testing import CliRunner

    from edgeclf.cli import app

    monkeypatch.delenv("EDGECLF_SERVE_TOKEN", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(app, ["serve", str(tiny_run), "--port", "0", *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("error: --token:") and message in lines[-1] and "serving" not in result.output


def _bomb(width: int, height: int) -> bytes:
    """A lossless WebP of one colour: a few hundred bytes that decode to width x height pixels."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (9, 9, 9)).save(buf, "WEBP", lossless=True)
    return buf.getvalue()


def _closed_within(conn: socket.socket, seconds: float, trickle: bytes) -> float | None:
    """Send `trickle` a byte every 0.1 s until the server closes the connection: the seconds it took,
    or None when it was still open after `seconds`."""
    started = time.monotonic()
    conn.settimeout(0.1)
    for i in range(int(seconds / 0.1)):
        try:
            conn.send(trickle[i % len(trickle) : i % len(trickle) + 1])
            if conn.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:  # reset: closed
            return time.monotonic() - started
    return None


def test_a_slowloris_client_is_dropped_at_the_request_deadline(server):
    """serve.timeout is a deadline for the whole request: before, it was per recv, and a client
    sending one header byte at a time held its connection (and thread) forever (issue 21)."""
    with socket.create_connection(server.server_address[:2]) as conn:
        conn.sendall(b"POST /predict HTTP/1.1\r\n")
        took = _closed_within(conn, 5 * TIMEOUT, b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")
    assert took is not None and took < 3 * TIMEOUT


def test_connections_over_the_cap_get_503_and_room_comes_back(tiny_run, image):
    with running(
        make_server(open_classifier(tiny_run), *serve_settings(port=0, timeout=TIMEOUT, max_connections=2))
    ) as server:
        idle = [socket.create_connection(server.server_address[:2]) for _ in range(2)]
        for conn in idle:
            conn.sendall(b"GET /he")  # half a request line: each holds a connection until its deadline
        time.sleep(0.3)
        status, body = raw(server, post(image, f"Content-Length: {len(image)}\r\n"))
        assert status == 503 and "too many open connections" in body["error"]
        assert server.refused_connections == 1
        deadline = time.monotonic() + TIMEOUT + 10  # the idle ones are dropped at their deadline
        while server.open_connections and time.monotonic() < deadline:
            time.sleep(0.05)
        assert raw(server, post(image, f"Content-Length: {len(image)}\r\n"))[0] == 200
        for _ in range(50):  # the answered connection's thread ends just after its reply
            if server.open_connections == 0:
                break
            time.sleep(0.05)
        assert server.open_connections == 0
        for conn in idle:
            conn.close()


def test_a_burst_of_48_clients_is_answered_and_the_backlog_is_configurable(tiny_run, image):
    """socketserver's listen backlog was 5: 8 simultaneous clients saw SYN retransmits (1 s)."""
    default = make_server(open_classifier(tiny_run), *serve_settings(port=0))
    assert default.request_queue_size == 128
    default.server_close()
    with running(make_server(open_classifier(tiny_run), *serve_settings(port=0, backlog=200))) as server:
        assert server.request_queue_size == 200
        assert at_once(server, image, 48, wait=30) == [200] * 48


def test_keep_alive_answers_several_requests_on_one_connection(server, image):
    request = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(image)}\r\n\r\n".encode() + image
    with socket.create_connection(server.server_address[:2], timeout=5) as conn:
        stream = conn.makefile("rb")
        for _ in range(3):
            conn.sendall(request)
            assert stream.readline().split()[1] == b"200"
            headers = list(iter(stream.readline, b"\r\n"))
            length = next(int(line.split(b":")[1]) for line in headers if line.lower().startswith(b"content-length"))
            assert "top_k" in json.loads(stream.read(length))


def test_an_image_over_the_per_request_pixel_cap_is_refused_from_its_header(tiny_run):
    bomb = _bomb(2000, 2000)
    assert len(bomb) < 1000
    with running(make_server(open_classifier(tiny_run), *serve_settings(port=0, max_pixels=3_000_000))) as server:
        status, body = raw(server, post(bomb, f"Content-Length: {len(bomb)}\r\n"))
        assert status == 400 and "2000 x 2000 pixels, over the 3 MP limit (predict.max_pixels)" in body["error"]
        assert server.RequestHandlerClass.budget.peak == 0  # refused before anything was decoded


def test_concurrent_memory_bombs_are_decoded_within_the_budget(tiny_run):
    """Before, every connection thread decoded at once: 6 requests of a 1.5 KB WebP declaring
    40 MP took serve to 3.76 GB (issue 21). With a 64 MB budget (4.2 MP at 16 bytes a pixel) eight
    4 MP bombs are decoded one at a time; each is answered 200, or 503 when it waited too long."""
    from edgeclf.runtime.decode_budget import BYTES_PER_PIXEL

    bomb = _bomb(2000, 2000)
    with running(
        make_server(open_classifier(tiny_run), *serve_settings(port=0, timeout=10, decode_memory_mb=64))
    ) as server:
        budget = server.RequestHandlerClass.budget
        assert budget.capacity == 64 * 2**20 // BYTES_PER_PIXEL
        statuses = at_once(server, bomb, 8, wait=60)
    assert set(statuses) <= {200, 503} and statuses.count(200) >= 1
    assert budget.peak == 4_000_000  # never two bombs at once
    assert budget.in_use == 0


def test_a_decode_that_cannot_get_room_in_time_is_not_admitted():
    from edgeclf.core.images import NotAdmitted
    from edgeclf.runtime.decode_budget import DecodeBudget

    budget = DecodeBudget(capacity=100, timeout=0.2)
    with budget.admit(60):
        with pytest.raises(NotAdmitted, match="decoding 0 MP for other requests"):
            with budget.admit(60):
                pass
        with budget.admit(40):  # fits beside it
            assert budget.in_use == 100
    with budget.admit(500):  # over the capacity, but alone: one image is always admitted
        assert budget.peak == 500
    assert budget.in_use == 0 and budget.refused == 1


def test_a_client_that_hangs_up_is_one_log_line_not_a_traceback(tiny_run, capsys):
    lines = []
    server = make_server(open_classifier(tiny_run), *serve_settings(port=0), log=lines.append)
    try:
        try:
            raise BrokenPipeError(32, "Broken pipe")
        except BrokenPipeError:
            server.handle_error(None, ("127.0.0.1", 5))
    finally:
        server.server_close()
    assert lines == ["127.0.0.1 connection ended: BrokenPipeError: [Errno 32] Broken pipe"]
    assert "Traceback" not in capsys.readouterr().err


def test_the_auto_decode_budget_is_a_quarter_of_free_memory_at_most_1_gib(monkeypatch):
    from edgeclf.runtime import decode_budget

    monkeypatch.setattr(decode_budget, "available_memory_bytes", lambda: 2 * 2**30)  # a 2 GB board
    assert decode_budget.capacity_pixels("auto", 40_000_000) == 2**29 // decode_budget.BYTES_PER_PIXEL
    monkeypatch.setattr(decode_budget, "available_memory_bytes", lambda: 24 * 2**30)
    assert decode_budget.capacity_pixels("auto", 40_000_000) == 2**30 // decode_budget.BYTES_PER_PIXEL
    monkeypatch.setattr(decode_budget, "available_memory_bytes", lambda: None)
    assert decode_budget.capacity_pixels("auto", 40_000_000) == 2**30 // decode_budget.BYTES_PER_PIXEL
    assert decode_budget.capacity_pixels(100, 40_000_000) == 100 * 2**20 // decode_budget.BYTES_PER_PIXEL
