"""The timed spans: one definition of each, used by bench, predict, watch and serve, and written
into bench.json (every span is wall-clock time, time.perf_counter, in milliseconds); and which of a
bench record's batch statistics is the headline latency."""

from __future__ import annotations

import time
from contextlib import contextmanager

SPANS = {
    "import_ms": "importing the engine's Python package in a fresh process (ai_edge_litert or tflite_runtime; "
    "onnxruntime; openvino; tensorflow + tf_keras for the Keras baseline)",
    "load_ms": "creating the model from its file, engine already imported: LiteRT Interpreter + allocate_tensors; "
    "ONNX Runtime InferenceSession (graph optimisation included); OpenVINO read_model + compile_model; "
    "Keras load_model + tracing the "
    "compiled call model(x, training=False) for a fixed input shape",
    "first_inference_ms": "the first invoke_ms after load, batch 1 (not among the timed runs)",
    "invoke_ms": "the engine's call on a prepared input tensor, input copy and output copy included: LiteRT "
    "set_tensor + invoke + get_tensor; ONNX Runtime session.run; OpenVINO an infer request's infer; "
    "Keras the compiled tf.function "
    "(NumPy in, NumPy out). Warm-up runs are not timed",
    "preprocess_ms": "uint8 pixels -> the artifact's input tensor (cast, normalisation, quantization), per image",
    "postprocess_ms": "the raw output -> probabilities (dequantization, renormalisation), per image",
    "decode_ms": "reading, decoding and resizing one image file (edgeclf.core.images.load_image); in serve, "
    "from when the decode budget admits it",
}


@contextmanager
def span(into: dict, name: str):
    """Add the block's duration in ms to into[name] (created at 0)."""
    assert name in SPANS, name
    started = time.perf_counter()
    try:
        yield
    finally:
        into[name] = into.get(name, 0.0) + (time.perf_counter() - started) * 1000


def headline_batch(record: dict) -> dict:
    """The batch-1 invoke_ms statistics of a bench.json artifact record (the first batch size
    measured when 1 was not): the latency every table and ratio reports."""
    return next((b for b in record["batches"] if b["batch"] == 1), record["batches"][0])
