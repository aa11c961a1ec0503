"""Soak `edgeclf serve`: bounded concurrent load from loopback clients, with a stalled client (sends
half a request line, then nothing) and a slow client (sends its body a few bytes at a time) in the
mix. Every well-formed request must be answered 200; reports p50/p99 latency and the server's RSS
before and after. Stops by itself after --seconds.

    python tools/soak_serve.py runs/demo --seconds 60 --concurrency 8 --out docs/benchmarks/soak_serve.json

The server is a real `edgeclf serve` process (port 0, its own RSS measured from /proc).
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def request(address, image: bytes, slow: bool = False) -> tuple[int, float]:
    """One POST /predict: (status, seconds). A slow request sends its body in 64-byte pieces."""
    head = f"POST /predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(image)}\r\n\r\n".encode()
    started = time.perf_counter()
    with socket.create_connection(address, timeout=30) as conn:
        conn.sendall(head)
        if slow:
            for i in range(0, len(image), 64):
                conn.sendall(image[i : i + 64])
                time.sleep(0.01)
        else:
            conn.sendall(image)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), time.perf_counter() - started


def soak(address, image: bytes, seconds: float, concurrency: int) -> dict:
    """Run the load; returns counts, latencies and what the stalled and slow clients saw."""
    deadline = time.monotonic() + seconds
    latencies, statuses, lock = [], {}, threading.Lock()

    def client():
        while time.monotonic() < deadline:
            status, took = request(address, image)
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                latencies.append(took)

    stalled_closed = {}

    def stalled():  # half a request line, then silence: the server must drop it after its timeout
        with socket.create_connection(address, timeout=seconds + 30) as conn:
            conn.sendall(b"POST /predict HTT")
            started = time.perf_counter()
            stalled_closed["after_s"] = (conn.recv(1024), time.perf_counter() - started)[1]

    slow_results = []

    def slow():
        while time.monotonic() < deadline:
            slow_results.append(request(address, image, slow=True)[0])

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    threads += [threading.Thread(target=stalled), threading.Thread(target=slow)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    ms = np.asarray(latencies) * 1000
    return {
        "requests": int(len(ms)),
        "statuses": {str(k): v for k, v in statuses.items()},
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "requests_per_s": float(len(ms) / seconds),
        "slow_client": {"requests": len(slow_results), "all_200": all(s == 200 for s in slow_results)},
        "stalled_client_dropped_after_s": stalled_closed.get("after_s"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="run directory or export folder")
    parser.add_argument("--image", type=Path, help="image to send (default: the run's first test image)")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=5, help="the server's serve.timeout")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    image_path = args.image
    if image_path is None:
        from edgeclf.run_directory import Run

        dataset = Run.open(args.model).dataset
        image_path = dataset.root / dataset.split("test")[0].path
    image = image_path.read_bytes()
    server = subprocess.Popen(
        [sys.executable, "-m", "edgeclf", "serve", str(args.model), "--port", "0", "--quiet", "--timeout",
         str(args.timeout)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        line = server.stdout.readline()
        port = int(re.search(r":(\d+)/predict", line).group(1))
        address = ("127.0.0.1", port)
        for _ in range(20):  # warm: the first requests allocate what steady state keeps
            request(address, image)
        before = rss_mb(server.pid)
        result = soak(address, image, args.seconds, args.concurrency)
        after = rss_mb(server.pid)
    finally:
        server.terminate()
        stop_started = time.perf_counter()
        server.wait(10)
        stopped_s = time.perf_counter() - stop_started
    from edgeclf.runtime.machine import fingerprint

    document = {
        "command": "python tools/soak_serve.py " + " ".join(sys.argv[1:]),
        "machine": fingerprint(None, "cpu"),
        "seconds": args.seconds,
        "concurrency": args.concurrency,
        **result,
        "rss_mb_before": before,
        "rss_mb_after": after,
        "sigterm_to_exit_s": stopped_s,
        "exit_code": server.returncode,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps({k: v for k, v in document.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
