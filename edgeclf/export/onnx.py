"""Keras -> ONNX (tf2onnx) and ONNX float -> int8 QDQ (onnxruntime static quantization), with the
labels and preprocessing in metadata_props and checks that an int8 graph really holds int8 weights."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
from pathlib import Path

import numpy as np

from edgeclf.export.errors import ExportError, NotIntegerError
from edgeclf.runtime.artifact import TensorInfo
from edgeclf.runtime.embedded import ONNX_LABELS

TF2ONNX = "tf2onnx.convert.from_keras"
log = logging.getLogger(__name__)


def ort_quant(reduce_range: bool) -> str:
    """The converter path recorded in artifacts.json (produced_by)."""
    weights = "7-bit (reduce_range)" if reduce_range else "8-bit"
    return (
        f"onnxruntime.quantization.quantize_static (QDQ, per-channel int8 weights, {weights}, "
        "uint8 activations, MinMax calibration)"
    )


def convert_float(model, image_size: int, opset: int) -> bytes:
    import tensorflow as tf
    import tf2onnx

    spec = (tf.TensorSpec((None, image_size, image_size, 3), tf.float32, name="image"),)
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    except Exception as exc:
        raise ExportError(f"ONNX conversion (tf2onnx) failed: {' '.join(str(exc).split())[:300]}") from exc
    return proto.SerializeToString()


def quantize_int8(float_onnx: bytes, calibration: np.ndarray, reduce_range: bool = True) -> bytes:
    """Static QDQ quantization, calibrated on calibration (float32 pixels as the float model takes).

    reduce_range keeps weights in 7 bits: on x86 CPUs without VNNI, onnxruntime's u8s8 kernels can
    saturate 16-bit intermediate sums (a documented onnxruntime caveat; docs/USAGE.md's int8 ONNX note
    has what it changed on the demo model without VNNI). But 7-bit weights lose what a pretrained
    backbone's fine weight distributions need (docs/BENCHMARKS.md section 2b has the measured top-1
    agreement with and without it). So the export tries both
    (export.onnx_reduce_range: auto) and keeps the more faithful (edgeclf.export.export_run).
    """
    with tempfile.TemporaryDirectory() as tmp:
        return quantize_prepared(prepare_for_quantization(float_onnx, Path(tmp)), calibration, reduce_range)


def nncf_quant() -> str:
    """The converter path recorded for NNCF's file (produced_by)."""
    from importlib.metadata import version

    return f"nncf.quantize (NNCF {version('nncf')}, ONNX backend: QDQ, its default preset and fast bias correction)"


def quantize_nncf(float_onnx: bytes, calibration: np.ndarray) -> bytes:
    """OpenVINO's post-training quantizer (NNCF) on the float ONNX with the same calibration
    images (float32 pixels): a QDQ ONNX file, int8 weights behind DequantizeLinear, for OpenVINO."""
    import nncf
    import onnx

    dataset = nncf.Dataset(list(calibration), lambda image: {"image": image[None]})
    progress = io.StringIO()
    try:
        # NNCF draws its progress bars on sys.stdout (a Rich console it makes itself, with no switch
        # to turn them off): kept for the debug log instead of the command's output
        with contextlib.redirect_stdout(progress):
            quantized = nncf.quantize(onnx.load_from_string(float_onnx), dataset, subset_size=len(calibration))
    except Exception as exc:
        raise ExportError(f"ONNX int8 quantization (NNCF) failed: {' '.join(str(exc).split())[:300]}") from exc
    finally:
        log.debug(progress.getvalue())
    return quantized.SerializeToString()


def prepare_for_quantization(float_onnx: bytes, workdir: Path) -> Path:
    """The float ONNX after onnxruntime's quantization pre-processing (shape inference, graph
    optimisation), written in workdir: what quantize_static starts from."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, pre = workdir / "float.onnx", workdir / "pre.onnx"
    src.write_bytes(float_onnx)
    try:
        quant_pre_process(str(src), str(pre))
    except Exception as exc:
        raise ExportError(f"ONNX int8 pre-processing (onnxruntime) failed: {' '.join(str(exc).split())[:300]}") from exc
    return pre


def quantize_prepared(
    prepared: Path,
    calibration: np.ndarray,
    reduce_range: bool,
    nodes_to_exclude: list[str] | None = None,
    calibration_cache: Path | None = None,
) -> bytes:
    """quantize_static of a prepared model (prepare_for_quantization) with edgeclf's settings;
    nodes_to_exclude stay float (the repair); calibration_cache: ranges computed once and read
    again by later calls (onnxruntime's calibration_cache_path)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration[i : i + 1] for i in range(len(calibration)))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"image": batch.astype(np.float32)}

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "int8.onnx")
        try:
            quantize_static(
                str(prepared),
                str(out),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                reduce_range=reduce_range,
                weight_type=QuantType.QInt8,
                activation_type=QuantType.QUInt8,
                nodes_to_exclude=list(nodes_to_exclude or []),
                calibration_cache_path=calibration_cache,
            )
        except Exception as exc:
            raise ExportError(
                f"ONNX int8 quantization (onnxruntime) failed: {' '.join(str(exc).split())[:300]}"
            ) from exc
        return out.read_bytes()


def add_metadata(content: bytes, props: dict[str, str]) -> bytes:
    import onnx

    model = onnx.load_from_string(content)
    existing = {p.key: p for p in model.metadata_props}
    for key, value in props.items():
        entry = existing.get(key) or model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = model.producer_name or "edgeclf"
    return model.SerializeToString()


def metadata_props(labels: list[str], preprocessing: dict, normalization: dict, expects: str) -> dict[str, str]:
    return {
        ONNX_LABELS: json.dumps(labels),
        "edgeclf.preprocessing": json.dumps(preprocessing),
        "edgeclf.normalization": json.dumps(normalization),
        "edgeclf.input_expects": expects,
    }


def check_model(content: bytes, precision: str) -> None:
    """onnx.checker with full_check; raises ExportError."""
    import onnx

    try:
        onnx.checker.check_model(onnx.load_from_string(content), full_check=True)
    except Exception as exc:
        raise ExportError(
            f"ONNX {precision}: onnx.checker rejected the model: {' '.join(str(exc).split())[:300]}"
        ) from exc


def check_precision(content: bytes, precision: str, float_layers: list[str] | None = None) -> None:
    """For int8, every Conv/Gemm/MatMul weight must be an int8 initializer behind a DequantizeLinear
    (not a float weight that is quantized at run time); for int8-mixed, every one but those of the
    float_layers recorded, which must hold float weights. Raises NotIntegerError."""
    import onnx

    if not precision.startswith("int8"):
        return
    graph = onnx.load_from_string(content).graph
    init = {t.name: t for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    weighted = [n for n in graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    kept = set(float_layers or [])
    float_weights = []
    for node in weighted:
        dq = producer.get(node.input[1])
        source = init.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        if (source is None or source.data_type != onnx.TensorProto.INT8) and node.name not in kept:
            float_weights.append(node.name)
        elif source is not None and node.name in kept:
            raise NotIntegerError(f"ONNX {precision}: layer {node.name!r}, recorded as kept in float, is quantized")
    missing = kept - {n.name for n in graph.node}
    if missing:
        first = sorted(missing)[0]
        raise NotIntegerError(f"ONNX {precision}: layer {first!r}, recorded as kept in float, is not in the file")
    if not weighted or float_weights:
        raise NotIntegerError(
            f"ONNX {precision}: {len(float_weights)} of {len(weighted)} weighted ops keep float weights "
            f"(e.g. {float_weights[0] if float_weights else 'none found'})"
        )


def io_info(content: bytes, expects: str) -> tuple[TensorInfo, TensorInfo]:
    import onnx

    model = onnx.load_from_string(content)
    names = {"1": "float32", "10": "float16", "2": "uint8", "3": "int8"}

    def info(value, **extra):
        t = value.type.tensor_type
        dims = [d.dim_value or None for d in t.shape.dim]
        return TensorInfo(
            name=value.name, dtype=names.get(str(t.elem_type), str(t.elem_type)), shape=[None, *dims[1:]], **extra
        )

    return info(model.graph.input[0], layout="NHWC", expects=expects), info(model.graph.output[0])
