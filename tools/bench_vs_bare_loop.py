"""Is edgeclf's path as fast as the runtimes used directly? For every validated artifact of a run,
alternate edgeclf's timed call (edgeclf.measure.latency.time_calls over the runtime backend, what
`edgeclf bench` reports as invoke_ms) with a bare loop of the artifact's own runtime, written as its
documentation shows, on the same file, input and thread count:

- LiteRT: Interpreter(num_threads) set_tensor / invoke / get_tensor;
- ONNX Runtime: InferenceSession(intra_op_num_threads) run;
- OpenVINO: read_model, reshape to the static batch, compile_model("CPU") with the latency hint,
  the thread count and the artifact's precision hint (f32, or bf16 for a bf16 artifact), infer.

Then, per precision (fp32, fp16, bf16, int8), edgeclf's fastest artifact against the fastest bare
runtime: the goal is within 5 %.

    python tools/bench_vs_bare_loop.py RUN_DIR --threads 2 --runs 200 --rounds 5 \
        --out docs/benchmarks/edgeclf_vs_runtimes.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from edgeclf.core.run_directory import Run
from edgeclf.measure.latency import time_calls
from edgeclf.runtime import read_artifacts
from edgeclf.runtime.machine import fingerprint
from edgeclf.runtime.open import open_classifier


def bare_call(engine: str, path: Path, x: np.ndarray, threads: int, precision: str):
    """The runtime's own call on `path`, set up as its documentation shows."""
    if engine == "litert":
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
        inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]

        def call(batch):
            interpreter.set_tensor(inp, batch)
            interpreter.invoke()
            return interpreter.get_tensor(out)

        return call
    if engine == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda batch: session.run(None, {name: batch})[0]
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(path))
    model.reshape(list(x.shape))
    config = {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": threads,
        "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
    }
    request = core.compile_model(model, "CPU", config).create_infer_request()

    def call(batch):
        request.infer({0: batch})
        return request.get_output_tensor(0).data

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--artifacts", default=None, help="comma-separated names (default: every validated one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    run = Run.open(args.run)
    entries = [a for a in read_artifacts(run.path) if a.status == "ok"]
    if args.artifacts:
        entries = [a for a in entries if a.name in args.artifacts.split(",")]
    pixels, _, _ = run.images("test")
    pairs = {}
    for info in entries:
        classifier = open_classifier(run.path, info.name, args.threads)
        x = classifier.prepare(pixels[:1])
        bare = bare_call(classifier.engine_name, run.path / info.path, x, args.threads, info.precision)
        pairs[info.name] = (info, classifier, bare, x)
    samples = {name: {"edgeclf": [], "bare": []} for name in pairs}
    started = time.perf_counter()
    for _ in range(args.rounds):  # alternate, so that machine noise hits both alike
        for name, (_, classifier, bare, x) in pairs.items():
            samples[name]["edgeclf"].append(
                float(np.median(time_calls(classifier.backend.run, x, args.warmup, args.runs, None)))
            )
            samples[name]["bare"].append(float(np.median(time_calls(bare, x, args.warmup, args.runs, None))))
    rows = {}
    for name, (info, classifier, _, _) in pairs.items():
        ours, bare = float(np.median(samples[name]["edgeclf"])), float(np.median(samples[name]["bare"]))
        family = "int8" if info.precision.startswith("int8") else info.precision
        rows[name] = {
            "engine": classifier.engine,
            "precision": family,
            "edgeclf_p50_ms": ours,
            "bare_p50_ms": bare,
            "ratio": ours / bare,
            "rounds": samples[name],
        }
    verdicts = {}
    for family in sorted({r["precision"] for r in rows.values()}):
        members = {n: r for n, r in rows.items() if r["precision"] == family}
        ours = min(members, key=lambda n: members[n]["edgeclf_p50_ms"])
        bare = min(members, key=lambda n: members[n]["bare_p50_ms"])
        ratio = members[ours]["edgeclf_p50_ms"] / members[bare]["bare_p50_ms"]
        verdicts[family] = {
            "edgeclf_fastest": ours,
            "edgeclf_p50_ms": members[ours]["edgeclf_p50_ms"],
            "fastest_runtime": bare,
            "runtime_p50_ms": members[bare]["bare_p50_ms"],
            "ratio": ratio,
            "within_5_percent": ratio <= 1.05,
        }
    document = {
        "command": "python tools/bench_vs_bare_loop.py " + " ".join(sys.argv[1:]),
        "machine": fingerprint(args.threads, "cpu"),
        "model": run.metadata["model"],
        "image_size": run.image_size,
        "method": {
            "batch": 1,
            "threads": args.threads,
            "runs": args.runs,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "seconds": round(time.perf_counter() - started),
        },
        "artifacts": rows,
        "per_precision": verdicts,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2) + "\n")
    print("| artifact | engine | edgeclf p50 ms | bare runtime p50 ms | ratio |\n|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['engine']} | {r['edgeclf_p50_ms']:.3f} | {r['bare_p50_ms']:.3f} | {r['ratio']:.3f} |")
    print("\n| precision | edgeclf's fastest | p50 ms | fastest runtime, used directly | p50 ms | ratio |")
    print("|---|---|---|---|---|---|")
    for family, v in verdicts.items():
        print(
            f"| {family} | {v['edgeclf_fastest']} | {v['edgeclf_p50_ms']:.3f} | {v['fastest_runtime']} (bare) | "
            f"{v['runtime_p50_ms']:.3f} | {v['ratio']:.3f} |"
        )


if __name__ == "__main__":
    main()
