"""The TFLite side of the int8 repair (edgeclf.export.repair): rank a full-integer TFLite's layers by
their quantization error with TensorFlow's own QuantizationDebugger, and build the file again with
chosen layers kept in float (its selective quantization, `denylisted_nodes`).

The model is calibrated once (the converter's calibrate-only mode: the float graph with the
calibration images' ranges recorded); every candidate is then one pass of the MLIR quantizer over
that calibrated model, the call TFLiteConverter makes itself, with the same uint8/int8 I/O. The
ranking is the debugger's per-layer statistics: each quantized op's output compared with the float
op run on the same (dequantized) input, on `export.repair_debug_images` calibration images, scored
as the TensorFlow guide to the debugger does, RMSE over the output's quantization step
(`rmse/scale`: about 0.29 for a layer whose error is rounding alone).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable

import numpy as np

from edgeclf.export.errors import ExportError
from edgeclf.export.layers import Layer

METRIC = "rmse/scale (tf.lite.experimental.QuantizationDebugger, per-layer RMSE over the output's quantization step)"
WEIGHTED = {"CONV_2D": "conv", "DEPTHWISE_CONV_2D": "depthwise", "FULLY_CONNECTED": "dense"}


class TfliteQuantizer:
    """converter: a TFLiteConverter set for full-integer int8 (edgeclf.export.tflite.full_integer_converter);
    representative: its calibration images as the model takes them (the debugger's images too)."""

    metric = METRIC
    produced_by = (
        "TFLite post-training int8 of the float Keras model's inference function (the converter's calibration, "
        "its MLIR quantizer with denylisted_nodes: the layers edgeclf's repair keeps in float)"
    )

    def __init__(self, converter, representative: Callable[[], Iterable]):
        import tensorflow as tf

        self._tf = tf
        self._io = converter.inference_input_type
        self._representative = representative
        converter._experimental_calibrate_only = True  # noqa: SLF001 (what the debugger itself sets)
        try:
            self._calibrated = converter.convert()
        except Exception as exc:
            raise ExportError(f"TFLite calibration for the repair failed: {' '.join(str(exc).split())[:300]}") from exc
        self._per_channel_off = converter._experimental_disable_per_channel  # noqa: SLF001

    def close(self) -> None:
        """Nothing held outside memory."""

    def build(self, float_layers: list[str]) -> bytes:
        """The full-integer file with float_layers (op names as rank() gives them) kept in float;
        with none, the plain post-training int8 file."""
        from tensorflow.lite.python.convert import mlir_quantize

        return mlir_quantize(
            self._calibrated,
            self._per_channel_off,
            input_data_type=self._io,
            output_data_type=self._io,
            denylisted_nodes=list(float_layers) or None,
        )

    def layers(self) -> list[Layer]:
        """The weighted ops (conv, depthwise, dense) of the full-integer file, by output tensor name."""
        ops = full_integer_ops(self.build([]))
        macs = op_macs(ops)
        return [Layer(op["name"], op["op"], macs[op["name"]], 0.0) for op in ops if op["weight_shape"]]

    def rank(self, debug_images: int) -> list[Layer]:
        """Every quantized op with its debugger statistics, the largest rmse/scale first."""
        from tensorflow.lite.python.convert import mlir_quantize

        debug_model = mlir_quantize(self._calibrated, self._per_channel_off, enable_numeric_verify=True)
        samples = [sample for _, sample in zip(range(debug_images), self._representative(), strict=False)]
        debugger = self._tf.lite.experimental.QuantizationDebugger(
            quant_debug_model_content=debug_model, debug_dataset=lambda: iter(samples)
        )
        debugger.run()
        dump = io.StringIO()
        debugger.layer_statistics_dump(dump)
        macs = op_macs(full_integer_ops(self.build([])))
        layers = []
        for row in csv.DictReader(io.StringIO(dump.getvalue())):
            scale, mse = float(row["scale"]), float(row["mean_squared_error"])
            score = math.sqrt(mse) / scale if scale > 0 else math.inf
            name = row["tensor_name"]
            op = row["op_name"]
            layers.append(Layer(name, op, macs.get(name, 0), score if math.isfinite(score) else 1e9))
        return sorted(layers, key=lambda layer: -layer.error)


def full_integer_ops(content: bytes) -> list[dict]:
    """The file's operators as LiteRT reads them: op name, output tensor name and dtype, weight
    shape and dtype (None for ops without weights), output shape."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    ops = []
    for op in interpreter._get_ops_details():  # noqa: SLF001 (LiteRT's only operator listing)
        if not len(op["outputs"]):
            continue
        out = interpreter._get_tensor_details(op["outputs"][0], 0)  # noqa: SLF001
        weight = None
        if op["op_name"] in WEIGHTED and len(op["inputs"]) > 1:
            weight = interpreter._get_tensor_details(op["inputs"][1], 0)  # noqa: SLF001
        ops.append(
            {
                "op": op["op_name"],
                "name": out["name"],
                "dtype": np.dtype(out["dtype"]).name,
                "shape": [int(v) for v in out["shape"]],
                "weight_shape": None if weight is None else [int(v) for v in weight["shape"]],
                "weight_dtype": None if weight is None else np.dtype(weight["dtype"]).name,
            }
        )
    return ops


def op_macs(ops: list[dict]) -> dict[str, int]:
    """Multiply-accumulates per image of each conv, depthwise and dense op (full_integer_ops' list),
    by output tensor name."""
    macs = {}
    for op in ops:
        w, out = op["weight_shape"], op["shape"]
        if not w:
            continue
        if op["op"] == "CONV_2D":  # weights [O, kh, kw, I]
            macs[op["name"]] = int(np.prod(out[1:])) * w[1] * w[2] * w[3]
        elif op["op"] == "DEPTHWISE_CONV_2D":  # weights [1, kh, kw, O]
            macs[op["name"]] = int(np.prod(out[1:])) * w[1] * w[2]
        else:  # FULLY_CONNECTED, weights [O, I]
            macs[op["name"]] = w[0] * w[1]
    return macs


def check_mixed(content: bytes, float_layers: list[str]) -> str | None:
    """What is wrong with an int8-mixed file, or None: each named layer must run in float (a float
    output) and every other conv, depthwise and dense op must hold int8 weights."""
    ops = full_integer_ops(content)
    by_name = {op["name"]: op for op in ops}
    missing = [name for name in float_layers if name not in by_name]
    if missing:
        return f"layer {missing[0][:80]!r}, recorded as kept in float, is not in the file"
    quantized = [name for name in float_layers if by_name[name]["dtype"] not in ("float32", "float16")]
    if quantized:
        return f"layer {quantized[0][:80]!r}, recorded as kept in float, is quantized in the file"
    float_weights = [
        op["name"]
        for op in ops
        if op["weight_dtype"] and op["name"] not in float_layers and op["weight_dtype"] != "int8"
    ]
    if float_weights:
        example = float_weights[0][:80]
        return f"{len(float_weights)} layer(s) not recorded as float hold float weights (e.g. {example!r})"
    return None
