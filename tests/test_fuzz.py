"""Bounded fuzzing (hypothesis) of what a device reads from outside: image bytes, artifacts.json and
HTTP requests to serve. Each target may only answer in its documented way: an image decodes or
raises ImageError; an index loads or raises EdgeclfError; serve answers with an HTTP status and keeps
serving. Seconds in CI; `python tools/fuzz.py` runs the same targets far longer (profile "long")."""

import io
import json
import os
import socket
import threading

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from edgeclf.core.errors import EdgeclfError  # noqa: E402
from edgeclf.core.images import ImageError, load_image  # noqa: E402
from edgeclf.core.run_directory import Run  # noqa: E402
from edgeclf.runtime.artifact import read_artifacts  # noqa: E402
from tests.helpers import fuzz_seed_images, serve_settings  # noqa: E402

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
settings.register_profile(
    "long",
    max_examples=int(os.environ.get("EDGECLF_FUZZ_EXAMPLES", "5000")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile(os.environ.get("EDGECLF_FUZZ_PROFILE", "ci"))


SEEDS = list(fuzz_seed_images().values())  # every format, with EXIF, ICC and XMP


@st.composite
def mutated(draw, seeds):
    """A seed file with some bytes overwritten, inserted or cut: the inputs that reach deep into a decoder."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 8))):
        op, at = draw(st.sampled_from(["set", "insert", "cut"])), draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


@given(st.one_of(st.binary(max_size=512), mutated(SEEDS)))
def test_fuzz_image_decoding_either_decodes_or_says_why(data):
    try:
        pixels = load_image(io.BytesIO(data), (16, 20))
    except ImageError:
        return
    assert pixels.shape == (16, 20, 3) and pixels.dtype == np.uint8


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def index_text(tiny_run):
    return (tiny_run / "export" / "artifacts.json").read_text()


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


@given(data=st.data())
def test_fuzz_artifacts_json_loads_or_gives_one_error(tmp_path_factory, index_text, data):
    document = json.loads(index_text)
    paths = list(_paths(document))[1:]
    for _ in range(data.draw(st.integers(1, 4))):  # replace a few values anywhere in the tree
        path = data.draw(st.sampled_from(paths))
        node = document
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = data.draw(JSON_VALUES)
        except (KeyError, IndexError, TypeError):
            continue
    folder = tmp_path_factory.mktemp("index")
    (folder / "artifacts.json").write_text(json.dumps(document))
    try:
        entries = read_artifacts(folder)
    except EdgeclfError as exc:
        assert "\n" not in str(exc) and str(folder) in str(exc)
        return
    for entry in entries:
        assert entry.image_size[0] >= 1 and isinstance(entry.labels, list)


@pytest.fixture(scope="module")
def server(tiny_run):
    from edgeclf.device.serve import make_server
    from edgeclf.runtime.open import open_classifier

    server = make_server(open_classifier(tiny_run), *serve_settings(port=0, max_body_bytes=50_000, timeout=0.5))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def good_request(tiny_run):
    dataset = Run.open(tiny_run).dataset
    image = (dataset.root / dataset.split("test")[0].path).read_bytes()
    return (
        f"POST /predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(image)}\r\n\r\n".encode()
        + image
    )


def _exchange(server, data: bytes) -> bytes:
    with socket.create_connection(server.server_address[:2], timeout=5) as conn:
        try:
            conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)  # nothing more is coming: the server must answer or close
        except OSError:  # the server may close first on a hopeless request
            pass
        chunks = []
        try:
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


TOKEN = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)
HEADER = st.tuples(
    st.sampled_from(["Content-Length", "Transfer-Encoding", "Connection", "Expect", "X"]) | TOKEN,
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=30),
)


@given(
    method=st.sampled_from(["GET", "POST", "PUT", "HEAD", "POST "]) | TOKEN,
    target=st.sampled_from(["/predict", "/health", "/predict?top_k=2", "/predict?top_k=-1&top_k=x", "*"]) | TOKEN,
    version=st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/9.9", ""]),
    headers=st.lists(HEADER, max_size=6),
    body=st.binary(max_size=64),
)
def test_fuzz_serve_answers_every_request_and_keeps_serving(
    server, good_request, method, target, version, headers, body
):
    head = f"{method} {target} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    answer = _exchange(server, head.encode("latin-1") + body)
    # an empty request line is dropped without an answer (http.server); with keep-alive, bytes after a
    # request that has no Content-Length are the next request, answered in turn: check every answer
    while answer:
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line.startswith(b"HTTP/1."), answer[:200]
        assert int(status_line.split()[1]) in (200, 400, 401, 404, 408, 411, 413, 414, 431, 501, 505), answer[:200]
        fields, _, rest = rest.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1]) for line in fields.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        if method.startswith("HEAD"):
            break
        json.loads(rest[:length])  # every answer is JSON
        answer = rest[length:]
    assert b" 200 " in _exchange(server, good_request)[:20]  # and the next client is served
