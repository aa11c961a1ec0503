"""Soak `edgeclf serve` (a real server process on loopback, its RSS, threads and open files read from
/proc) through four phases, each measured on its own:

1. steady: --concurrency clients looping POST /predict, with a stalled client (half a request line,
   then silence), a slow client (its body 64 bytes at a time, all within the deadline) and a
   slowloris client (one header byte every 0.5 s, forever): p50/p99 of the well-formed requests,
   and when the server dropped the stalled and slowloris clients (null: still held at the end);
2. burst: --burst clients connecting at the same instant, one request each (listen backlog):
   p50/p99/max, statuses; three rounds;
3. memory bomb: --bombers clients looping a 1.7 KB WebP that declares 39.9 MP (under the 40 MP
   cap) while 2 clients time ordinary requests: the server's peak RSS and the ordinary p99;
4. slowloris horde: --horde connections each trickling a header byte every 0.5 s: how many the
   server held open at once (threads, file descriptors) and how many it answered 503.

    python tools/soak_serve.py tests/fixtures/tiny_run --out docs/benchmarks/soak_serve.json
    python tools/soak_serve.py tests/fixtures/tiny_run --source /tmp/old --out /tmp/soak_before.json

--source runs the server from another source tree of edgeclf (a `git worktree` of an older commit:
the "before" figures), with this environment's packages.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

# Runs `python -m edgeclf` from SOURCE: the editable install's finder would import this checkout.
BOOT = (
    "import sys, runpy; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]; "
    "sys.path.insert(0, sys.argv.pop(1)); sys.argv[0] = 'edgeclf'; runpy.run_module('edgeclf', run_name='__main__')"
)


def proc_status(pid: int) -> dict:
    """VmRSS (MB), Threads and open fds of a process."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            out["rss_mb"] = int(line.split()[1]) / 1024
        elif line.startswith("Threads:"):
            out["threads"] = int(line.split()[1])
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


class Sampler:
    """Peaks of the server's RSS, threads and fds, sampled every 50 ms while a phase runs."""

    def __init__(self, pid: int):
        self.pid, self.peak, self.stop = pid, {}, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def _run(self):
        while not self.stop.wait(0.05):
            try:
                for key, value in proc_status(self.pid).items():
                    self.peak[key] = max(self.peak.get(key, 0), value)
            except (OSError, ValueError):
                return

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def request(address, image: bytes, slow: bool = False, timeout: float = 60) -> tuple[int, float]:
    """One POST /predict: (status, seconds); status 0 when the connection failed."""
    head = f"POST /predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(image)}\r\n\r\n".encode()
    started = time.perf_counter()
    try:
        with socket.create_connection(address, timeout=timeout) as conn:
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
        status = int(answer.split(b" ", 2)[1])
    except (OSError, IndexError, ValueError):
        status = 0
    return status, time.perf_counter() - started


def trickle(address, until: float, result: dict) -> None:
    """A slowloris client: a request line, then one header byte every 0.5 s until `until` or until
    the server closes; result["dropped_after_s"] is when it closed (None: held to the end)."""
    result["dropped_after_s"] = None
    try:
        conn = socket.create_connection(address, timeout=5)
    except OSError:
        result["refused"] = True
        return
    started = time.perf_counter()
    with conn:
        try:
            conn.sendall(b"POST /predict HTTP/1.1\r\n")
            conn.settimeout(0.5)
            while time.monotonic() < until:
                conn.send(b"X")
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                if data.startswith(b"HTTP/1.1 503"):
                    result["refused"] = True
                result["dropped_after_s"] = time.perf_counter() - started
                return
        except OSError:
            result["dropped_after_s"] = time.perf_counter() - started


def summary(latencies: list[float], statuses: list[int]) -> dict:
    ms = np.asarray(latencies) * 1000 if latencies else np.asarray([np.nan])
    counts = {str(s): statuses.count(s) for s in sorted(set(statuses))}
    return {
        "requests": len(latencies),
        "statuses": counts,
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
    }


def loop(address, image: bytes, until: float, latencies: list, statuses: list, lock: threading.Lock) -> None:
    while time.monotonic() < until:
        status, took = request(address, image)
        with lock:
            statuses.append(status)
            latencies.append(took)


def steady(address, image: bytes, seconds: float, concurrency: int) -> dict:
    until = time.monotonic() + seconds
    latencies, statuses, lock = [], [], threading.Lock()
    stalled, slowloris, slow = {}, {}, []

    def stall():
        with socket.create_connection(address, timeout=seconds + 30) as conn:
            conn.sendall(b"POST /predict HTT")
            started = time.perf_counter()
            try:
                conn.recv(1024)
                stalled["dropped_after_s"] = round(time.perf_counter() - started, 2)
            except OSError:
                stalled["dropped_after_s"] = None

    def slow_client():
        while time.monotonic() < until:
            slow.append(request(address, image, slow=True)[0])

    threads = [
        threading.Thread(target=loop, args=(address, image, until, latencies, statuses, lock))
        for _ in range(concurrency)
    ]
    threads += [
        threading.Thread(target=stall),
        threading.Thread(target=slow_client),
        threading.Thread(target=trickle, args=(address, until, slowloris)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    dropped = slowloris.get("dropped_after_s")
    return {
        **summary(latencies, statuses),
        "requests_per_s": round(len(latencies) / seconds, 1),
        "slow_client": {"requests": len(slow), "all_200": all(s == 200 for s in slow)},
        "stalled_client_dropped_after_s": stalled.get("dropped_after_s"),
        "slowloris_dropped_after_s": round(dropped, 2) if dropped else None,
    }


def burst(address, image: bytes, clients: int, rounds: int = 3) -> dict:
    latencies, statuses, lock = [], [], threading.Lock()
    for _ in range(rounds):
        barrier = threading.Barrier(clients)

        def one(barrier=barrier):
            barrier.wait()
            status, took = request(address, image)
            with lock:
                statuses.append(status)
                latencies.append(took)

        threads = [threading.Thread(target=one) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        time.sleep(0.5)
    return {"clients": clients, "rounds": rounds, **summary(latencies, statuses)}


def bomb_image() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (6320, 6320), (9, 9, 9)).save(buf, "WEBP", lossless=True)  # 39.9 MP in about 1.7 KB
    return buf.getvalue()


def memory_bomb(address, image: bytes, bomb: bytes, seconds: float, bombers: int) -> dict:
    until = time.monotonic() + seconds
    ordinary, ordinary_status, bombs, bomb_status, lock = [], [], [], [], threading.Lock()
    threads = [
        threading.Thread(target=loop, args=(address, bomb, until, bombs, bomb_status, lock)) for _ in range(bombers)
    ]
    threads += [
        threading.Thread(target=loop, args=(address, image, until, ordinary, ordinary_status, lock)) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    return {
        "bomb_bytes": len(bomb),
        "bombers": bombers,
        "bombs": summary(bombs, bomb_status),
        "ordinary": summary(ordinary, ordinary_status),
    }


def horde(address, size: int, seconds: float) -> dict:
    until = time.monotonic() + seconds
    results = [{} for _ in range(size)]
    threads = [threading.Thread(target=trickle, args=(address, until, r)) for r in results]
    for thread in threads:
        thread.start()
        time.sleep(0.002)
    for thread in threads:
        thread.join(seconds + 30)
    held = sum(r.get("dropped_after_s") is None and not r.get("refused") for r in results)
    return {
        "connections": size,
        "refused_503": sum(bool(r.get("refused")) for r in results),
        "dropped": sum(r.get("dropped_after_s") is not None for r in results),
        "held_to_the_end": held,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="run directory or export folder")
    parser.add_argument("--image", type=Path, help="image to send (default: the run's first test image)")
    parser.add_argument("--seconds", type=float, default=20, help="steady and memory-bomb phases, each")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--burst", type=int, default=48)
    parser.add_argument("--bombers", type=int, default=6)
    parser.add_argument("--horde", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=5, help="the server's serve.timeout")
    parser.add_argument("--source", type=Path, help="run the server from this edgeclf source tree")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    image_path = args.image
    if image_path is None:
        from edgeclf.core.run_directory import Run

        dataset = Run.open(args.model).dataset
        image_path = dataset.root / dataset.split("test")[0].path
    image, bomb = image_path.read_bytes(), bomb_image()
    launcher = (
        [sys.executable, "-c", BOOT, str(args.source.resolve())] if args.source else [sys.executable, "-m", "edgeclf"]
    )
    serve_args = ["serve", str(args.model), "--port", "0", "--quiet", "--timeout", str(args.timeout)]
    server = subprocess.Popen([*launcher, *serve_args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    phases = {}
    try:
        line = server.stdout.readline()
        port = int(re.search(r":(\d+)/predict", line).group(1))
        address = ("127.0.0.1", port)
        for _ in range(20):  # warm: the first requests allocate what steady state keeps
            request(address, image)
        idle = proc_status(server.pid)
        for name, run in (
            ("steady", lambda: steady(address, image, args.seconds, args.concurrency)),
            ("burst", lambda: burst(address, image, args.burst)),
            ("memory_bomb", lambda: memory_bomb(address, image, bomb, args.seconds, args.bombers)),
            ("slowloris_horde", lambda: horde(address, args.horde, max(3 * args.timeout, 10))),
        ):
            with Sampler(server.pid) as sampler:
                phases[name] = run()
            phases[name]["server_peak"] = {k: round(v, 1) for k, v in sampler.peak.items()}
            time.sleep(args.timeout + 1)  # what a phase left open is dropped before the next
            print(name, json.dumps(phases[name]), flush=True)
        after = proc_status(server.pid)
    finally:
        server.terminate()
        stop_started = time.perf_counter()
        server.wait(30)
        stopped_s = time.perf_counter() - stop_started
    from edgeclf.runtime.machine import fingerprint

    document = {
        "command": "python tools/soak_serve.py " + " ".join(sys.argv[1:]),
        "machine": fingerprint(None, "cpu"),
        "server_source": str(args.source) if args.source else "this checkout",
        "serve_timeout_s": args.timeout,
        "server_idle": idle,
        **phases,
        "server_after": after,
        "sigterm_to_exit_s": round(stopped_s, 2),
        "exit_code": server.returncode,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps({k: v for k, v in document.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
