"""The ONNX side of the int8 repair (edgeclf.export.repair): rank the QDQ model's layers with ONNX
Runtime's own QDQ debugger (onnxruntime.quantization.qdq_loss_debug) and quantize again with chosen
nodes left in float (quantize_static's `nodes_to_exclude`). The same file runs on OpenVINO.

The float model is pre-processed once and calibrated once (onnxruntime's calibration cache); each
candidate is one quantize_static over the cached ranges. A layer's score is the error it adds: the
debugger collects every tensor of the float and of the QDQ model on `export.repair_debug_images`
calibration images, and a node scores its output's noise-to-signal power against the float model
(from the debugger's SQNR) less the worst of its inputs'. That sees what quantizing a node's
weights does to its output, which a weight's own SQNR does not: a weight tensor with one outlier
per channel keeps a high SQNR while every other weight of the channel rounds to zero.
"""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path

import numpy as np

from edgeclf.export import onnx as onnx_export
from edgeclf.export.layers import Layer

METRIC = (
    "noise-to-signal power a node adds to its output against the float model "
    "(onnxruntime.quantization.qdq_loss_debug activations of both models, their SQNR)"
)
WEIGHTED = ("Conv", "Gemm", "MatMul")
DEQUANTIZED = "_DequantizeLinear_Output"  # onnxruntime's name for a tensor's value after its Q/DQ pair


class OnnxQuantizer:
    """float_onnx: the float ONNX file's bytes; calibration: float32 pixels as the float model
    takes them; reduce_range: 7-bit weights (as the failed artifact had them)."""

    metric = METRIC

    def __init__(self, float_onnx: bytes, calibration: np.ndarray, reduce_range: bool):
        self._dir = tempfile.TemporaryDirectory(prefix="edgeclf-onnx-repair-")
        workdir = Path(self._dir.name)
        self._prepared = onnx_export.prepare_for_quantization(float_onnx, workdir)
        self._cache = workdir / "calibration.json"
        self._calibration = calibration.astype(np.float32)
        self.reduce_range = reduce_range
        self.produced_by = (
            f"{onnx_export.ort_quant(reduce_range)} of the float ONNX, nodes_to_exclude: the layers edgeclf's "
            "repair keeps in float"
        )

    def close(self) -> None:
        self._dir.cleanup()

    def build(self, float_layers: list[str]) -> bytes:
        """The QDQ model with float_layers (node names) left in float."""
        return onnx_export.quantize_prepared(
            self._prepared, self._calibration, self.reduce_range, float_layers, self._cache
        )

    def layers(self) -> list[Layer]:
        """The nodes with a constant weight (Conv, Gemm, MatMul), as the quantizer names them."""
        import onnx

        model = onnx.load(str(self._prepared))
        macs = node_macs(model)
        return [Layer(node.name, node.op_type, macs[node.name], 0.0) for node in model.graph.node if node.name in macs]

    def rank(self, debug_images: int) -> list[Layer]:
        """Every node of the QDQ model, the one that adds the most error first."""
        import onnx
        from onnxruntime.quantization import qdq_loss_debug as debug

        workdir = Path(self._dir.name)
        qdq = workdir / "qdq.onnx"
        qdq.write_bytes(self.build([]))
        images = self._calibration[:debug_images]
        quantized, floating = (
            _activations(debug, model, workdir / f"{model.stem}_augmented.onnx", images)
            for model in (qdq, self._prepared)
        )

        def noise(float_name: str, qdq_name: str) -> float | None:
            # a quantized tensor is compared after its QuantizeLinear/DequantizeLinear pair: what its
            # consumers read (the quantizer drops a Relu after a Conv, whose range does its work)
            qdq_name = next((n for n in (f"{qdq_name}{DEQUANTIZED}", qdq_name) if n in quantized), None)
            if float_name not in floating or qdq_name is None:
                return None
            sqnr = debug.compute_signal_to_quantization_noice_ratio(floating[float_name], quantized[qdq_name])
            return _noise(sqnr)

        macs = node_macs(onnx.load(str(self._prepared)))
        layers = []
        for node in onnx.load(str(qdq)).graph.node:
            if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
                continue
            out = [n for n in (noise(name, name) for name in node.output) if n is not None]
            if not out:
                continue
            before = [n for n in (noise(_float_name(name), name) for name in node.input) if n is not None]
            added = max(out) - max(before, default=0.0)
            layers.append(Layer(node.name, node.op_type, macs.get(node.name, 0), max(added, 0.0)))
        return sorted(layers, key=lambda layer: -layer.error)


def _activations(debug, model: Path, augmented: Path, images: np.ndarray) -> dict[str, list[np.ndarray]]:
    """Every float tensor of the model on the images (the QDQ debugger's collection)."""
    debug.modify_model_output_intermediate_tensors(str(model), str(augmented))
    return debug.collect_activations(str(augmented), ({"image": image[None]} for image in images))


def _float_name(qdq_name: str) -> str:
    """The float model's name of a tensor that the QDQ model reads through a DequantizeLinear."""
    return re.sub(rf"{DEQUANTIZED}(_\d+)?$", "", qdq_name)


def _noise(sqnr_db: float) -> float:
    """A noise-to-signal power ratio from an SQNR in dB (+inf: identical, no noise; NaN: the
    quantized tensor is not a number, all noise)."""
    if np.isnan(sqnr_db):
        return math.inf
    return float(10 ** (-sqnr_db / 10)) if np.isfinite(sqnr_db) else (0.0 if sqnr_db > 0 else math.inf)


def node_macs(model) -> dict[str, int]:
    """Multiply-accumulates per image of each Conv, Gemm and MatMul node with a constant weight,
    from the shapes that onnxruntime's pre-processing inferred."""
    from onnx import numpy_helper

    init = {t.name: numpy_helper.to_array(t).shape for t in model.graph.initializer}
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*model.graph.value_info, *model.graph.output]
    }
    macs = {}
    for node in model.graph.node:
        if node.op_type not in WEIGHTED or len(node.input) < 2 or node.input[1] not in init:
            continue
        w = init[node.input[1]]
        if node.op_type == "Conv":  # weights [M, C/group, kh, kw], output [N, M, H, W]
            out = shapes.get(node.output[0], [])
            spatial = int(np.prod(out[2:])) if len(out) == 4 and all(out[2:]) else 0
            macs[node.name] = spatial * int(np.prod(w))
        else:  # a [K, N] weight: K * N per image
            macs[node.name] = int(np.prod(w))
    return macs
