"""Time-boxed mutation fuzzing of the image decoder (`edgeclf.core.images.load_image`), far faster than
hypothesis: seeds of every format edgeclf reads, with EXIF, ICC and XMP (tests/helpers.py
fuzz_seed_images), mutated by overwriting, inserting and cutting bytes and by splicing two seeds.
The contract under test: a file decodes to uint8 pixels or raises ImageError; anything else (an
exception of another type, a decode slower than --slow seconds, a process that grows past
--max-rss-mb) is a finding, saved under --findings with its traceback line.

    python tools/fuzz_images.py --minutes 10 --workers 2 --out docs/benchmarks/fuzz_images.json

Each worker is its own process with its own seed of the random generator; the record has the
inputs tried per seed file, the outcomes (decoded / ImageError / finding) and the machine.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import resource
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


INTERESTING = [b"\x00\x00", b"\xff\xff", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80", b"\x01\x00"]


def mutate(rng: np.random.Generator, data: bytes, other: bytes) -> bytes:
    """1-8 random edits of `data`: set a byte, insert 1-16 random bytes, cut 1-64 bytes, set an
    interesting value (0, 0xff, 0x7fffffff...) at an aligned offset, or splice in part of `other`."""
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 9))):
        at = int(rng.integers(0, max(len(out), 1)))
        op = int(rng.integers(0, 5))
        if op == 0 and out:
            out[at] = int(rng.integers(0, 256))
        elif op == 1:
            out[at:at] = rng.integers(0, 256, int(rng.integers(1, 17)), dtype=np.uint8).tobytes()
        elif op == 2:
            del out[at : at + int(rng.integers(1, 65))]
        elif op == 3:
            value = INTERESTING[int(rng.integers(len(INTERESTING)))]
            out[at : at + len(value)] = value
        else:
            start = int(rng.integers(0, max(len(other), 1)))
            out[at:at] = other[start : start + int(rng.integers(1, 129))]
    return bytes(out)


def worker(index: int, seconds: float, slow: float, max_rss_mb: float, findings: str, queue) -> None:
    import logging

    logging.disable(logging.CRITICAL)  # the damaged-EXIF warning would flood the output
    from edgeclf.core.images import ImageError, load_image
    from tests.helpers import fuzz_seed_images

    seeds = fuzz_seed_images()
    names = sorted(seeds)
    rng = np.random.default_rng(1000 + index)
    tried, outcomes, found = Counter(), Counter(), []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(200):
            name = names[int(rng.integers(len(names)))]
            data = mutate(rng, seeds[name], seeds[names[int(rng.integers(len(names)))]])
            tried[name] += 1
            started = time.perf_counter()
            try:
                pixels = load_image(io.BytesIO(data), (16, 20))
                assert pixels.shape == (16, 20, 3) and pixels.dtype == np.uint8, "wrong pixels"
                outcome = "decoded"
            except ImageError:
                outcome = "ImageError"
            except BaseException as exc:  # noqa: BLE001 (what the fuzzer is looking for)
                outcome = "finding"
                found.append(_save(findings, index, len(found), data, name, traceback.format_exception_only(exc)))
            took = time.perf_counter() - started
            if took > slow and outcome != "finding":
                outcome = "finding"
                found.append(_save(findings, index, len(found), data, name, [f"slow: {took:.1f} s"]))
            outcomes[outcome] += 1
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if rss > max_rss_mb:
            found.append({"seed": "-", "error": f"worker peak RSS {rss:.0f} MB over {max_rss_mb:.0f}"})
            break
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"tried": dict(tried), "outcomes": dict(outcomes), "findings": found, "peak_rss_mb": round(rss)})


def _save(folder: str, worker_index: int, n: int, data: bytes, seed: str, lines: list[str]) -> dict:
    path = Path(folder) / f"w{worker_index}-{n:04d}-{seed}.bin"
    if n < 50:  # the first few of each worker are enough to reproduce
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return {"seed": seed, "file": path.name, "bytes": len(data), "error": "".join(lines).strip()[:300]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--slow", type=float, default=5.0, help="seconds one decode may take")
    parser.add_argument("--max-rss-mb", type=float, default=1500.0, help="a worker's peak RSS before it stops")
    parser.add_argument("--findings", default="/tmp/edgeclf-fuzz-findings")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from edgeclf.runtime.machine import fingerprint

    queue = mp.get_context("spawn").Queue()
    ctx = mp.get_context("spawn")
    started = time.perf_counter()
    procs = [
        ctx.Process(target=worker, args=(i, args.minutes * 60, args.slow, args.max_rss_mb, args.findings, queue))
        for i in range(args.workers)
    ]
    for proc in procs:
        proc.start()
    results = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - started
    tried, outcomes = Counter(), Counter()
    for result in results:
        tried.update(result["tried"])
        outcomes.update(result["outcomes"])
    findings = [f for result in results for f in result["findings"]]
    record = {
        "command": "python tools/fuzz_images.py " + " ".join(sys.argv[1:]),
        "seconds": round(elapsed),
        "workers": args.workers,
        "inputs": sum(tried.values()),
        "per_second": round(sum(tried.values()) / elapsed),
        "tried_per_seed": dict(sorted(tried.items())),
        "outcomes": dict(outcomes),
        "findings": len(findings),
        "distinct_findings": sorted({f["error"].splitlines()[0] for f in findings}),
        "finding_examples": findings[:20],
        "peak_rss_mb_per_worker": [r["peak_rss_mb"] for r in results],
        "machine": fingerprint(None, "cpu"),
    }
    print(json.dumps({k: v for k, v in record.items() if k not in ("machine", "finding_examples")}, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1) + "\n")
    raise SystemExit(1 if findings else 0)


if __name__ == "__main__":
    main()
