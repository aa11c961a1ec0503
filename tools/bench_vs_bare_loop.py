"""Check that `edgeclf bench` measures the engine and nothing else: in one process, alternate
edgeclf's timing loop (edgeclf.bench.time_calls over the runtime backend) with a bare LiteRT
set_tensor/invoke/get_tensor loop on the same file, input and thread count, and compare p50s.

    python tools/bench_vs_bare_loop.py runs/demo --artifact tflite-int8-ptq --runs 500 --rounds 5 \
        --out docs/bench_vs_bare_loop.md
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from edgeclf.bench import time_calls
from edgeclf.run_directory import Run
from edgeclf.runtime.open import open_classifier


def bare_loop(path: Path, x: np.ndarray, threads: int, warmup: int, runs: int) -> list[float]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    for _ in range(warmup):
        interpreter.set_tensor(inp, x)
        interpreter.invoke()
        interpreter.get_tensor(out)
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        interpreter.set_tensor(inp, x)
        interpreter.invoke()
        interpreter.get_tensor(out)
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--artifact", default="tflite-int8-ptq")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    run = Run.open(args.run)
    classifier = open_classifier(run.path, args.artifact, args.threads)
    if classifier.info.format != "tflite":
        raise SystemExit("--artifact: choose a .tflite artifact (the bare loop is LiteRT's)")
    pixels, _, _ = run.images("test")
    x = classifier.prepare(pixels[:1])
    ours, bare = [], []
    for _ in range(args.rounds):  # alternate, so that machine noise hits both alike
        ours.append(float(np.median(time_calls(classifier.backend.run, x, args.warmup, args.runs, None))))
        bare.append(
            float(np.median(bare_loop(run.path / classifier.info.path, x, args.threads, args.warmup, args.runs)))
        )
    p_ours, p_bare = float(np.median(ours)), float(np.median(bare))
    ratio = p_ours / p_bare
    lines = [
        "# edgeclf bench vs a bare LiteRT invoke loop",
        "",
        f"Command: `python tools/bench_vs_bare_loop.py {args.run} --artifact {args.artifact} --threads {args.threads} "
        f"--runs {args.runs} --rounds {args.rounds}`",
        f"Machine: {platform.processor() or platform.machine()}, {platform.platform()}; "
        f"batch 1, {args.threads} thread(s); "
        f"{args.rounds} alternating rounds of {args.runs} timed runs after {args.warmup} warm-up runs.",
        "",
        "| round | edgeclf p50 (ms) | bare loop p50 (ms) |",
        "|---|---|---|",
        *[f"| {i + 1} | {a:.4f} | {b:.4f} |" for i, (a, b) in enumerate(zip(ours, bare, strict=False))],
        "",
        f"Median of the round p50s: edgeclf {p_ours:.4f} ms, bare loop {p_bare:.4f} ms, ratio {ratio:.3f} "
        f"({'within' if abs(ratio - 1) <= 0.05 else 'OUTSIDE'} 5%).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    raise SystemExit(0 if abs(ratio - 1) <= 0.05 else 1)


if __name__ == "__main__":
    main()
