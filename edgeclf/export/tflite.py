"""Keras -> TFLite: float32, float16, dynamic-range and full-integer (QAT or PTQ) conversions, and
the checks that the result is what its name says.

TFLiteConverter.from_keras_model writes the Keras model as a SavedModel on every call, with Keras'
per-layer serialization (every layer's call traced and saved), and converts that; for MobileNetV2
the save is most of the conversion's time. `inference_saved_model` writes the model's inference
function alone (its variables and one traced call, the batch dimension open), once per source
model, and every precision converts from it: the converter's input is the same graph, and the
files run bit-identically (measured in docs/BENCHMARKS.md, "Export time").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from edgeclf.export.errors import ExportError, NotIntegerError
from edgeclf.runtime.artifact import TensorInfo

CONVERTER = "tf.lite.TFLiteConverter.from_saved_model"


def inference_saved_model(model, dest: Path) -> Path:
    """The Keras model's inference call (training=False, input [None, H, W, C] float32) and its
    variables as a SavedModel at dest: what the converter starts from."""
    import tensorflow as tf

    module = tf.Module()
    module.weights = list(model.variables)  # tracked, so that the SavedModel holds them
    spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)
    module.serve = tf.function(lambda image: model(image, training=False), input_signature=[spec])
    tf.saved_model.save(module, str(dest), signatures=module.serve.get_concrete_function())
    return Path(dest)


def convert(
    model, precision: str, representative: Callable[[], Iterable] | None = None, int8_input: str | None = None
) -> bytes:
    """model: a Keras model, or the directory of its inference_saved_model (faster when several
    precisions are made from one model). precision: fp32 | fp16 | dynamic | int8-qat | int8-ptq.
    Full-integer conversions need a representative dataset (calibration images, already
    preprocessed as the model expects them) and int8_input, the image input's dtype (uint8 | int8:
    export.int8_input)."""
    import tensorflow as tf

    if isinstance(model, (str, Path)):  # an inference_saved_model
        converter = tf.lite.TFLiteConverter.from_saved_model(str(model))
    else:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif precision.startswith("int8"):
        # QAT models carry their ranges; the converter still asks for a representative dataset
        # (TF 2.21) and uses it only for tensors that QAT left without ranges.
        _full_integer(converter, representative, int8_input, precision)
    elif precision != "fp32":
        raise ExportError(f"unknown TFLite precision {precision}")
    try:
        return converter.convert()
    except Exception as exc:  # the converter raises many types; name the step and keep one line
        raise ExportError(f"TFLite {precision} conversion failed: {' '.join(str(exc).split())[:300]}") from exc


def full_integer_converter(saved_model: Path, representative: Callable[[], Iterable], int8_input: str):
    """A converter set for full-integer int8 from an inference_saved_model (what the repair
    calibrates with: edgeclf.export.tflite_repair)."""
    import tensorflow as tf

    return _full_integer(tf.lite.TFLiteConverter.from_saved_model(str(saved_model)), representative, int8_input)


def _full_integer(converter, representative, int8_input: str | None, precision: str = "int8"):
    import tensorflow as tf

    if int8_input not in ("uint8", "int8"):
        raise ExportError(f"TFLite {precision}: int8_input must be uint8 or int8 (export.int8_input)")
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8 if int8_input == "uint8" else tf.int8
    converter.inference_output_type = converter.inference_input_type
    return converter


def representative_dataset(images: np.ndarray):
    """A representative_dataset callable over calibration images, already as the model takes them
    (pixels for the float model, normalised values for the QAT model), one float32 image per step."""

    def generate():
        for image in images:
            yield [image[None].astype(np.float32)]

    return generate


def _dtype_name(dtype) -> str:
    return np.dtype(dtype).name


def io_info(content: bytes, expects: str) -> tuple[TensorInfo, TensorInfo]:
    """Input and output tensor descriptions read from the converted model itself."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()

    def info(d, **extra):
        scale, zero = d["quantization"]
        quantized = _dtype_name(d["dtype"]) in ("uint8", "int8")
        return TensorInfo(
            name=d["name"],
            dtype=_dtype_name(d["dtype"]),
            shape=[None, *map(int, d["shape"][1:])],
            scale=float(scale) if quantized else None,
            zero_point=int(zero) if quantized else None,
            **extra,
        )

    return info(inp, layout="NHWC", expects=expects), info(out)


def check_precision(content: bytes, precision: str, int8_input: str, float_layers: list[str] | None = None) -> None:
    """Raise NotIntegerError when an int8 model is not full-integer (float or dynamic-range inside;
    for int8-mixed, anything float but the float_layers recorded), ExportError when a float model's
    I/O is not float32."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    io = (_dtype_name(inp["dtype"]), _dtype_name(out["dtype"]))
    if precision.startswith("int8"):
        if io != (int8_input, int8_input):
            raise NotIntegerError(f"TFLite {precision}: input/output are {io[0]}/{io[1]}, expected {int8_input}")
        if precision == "int8-mixed":
            from edgeclf.export.tflite_repair import check_mixed

            problem = check_mixed(content, float_layers or [])
            if problem:
                raise NotIntegerError(f"TFLite {precision}: {problem}")
            return
        floats = [
            t["name"] for t in interpreter.get_tensor_details() if _dtype_name(t["dtype"]) in ("float32", "float16")
        ]
        if floats:
            raise NotIntegerError(
                f"TFLite {precision}: {len(floats)} float tensor(s) left (e.g. {floats[0]}): "
                "the model is not full-integer"
            )
    elif io != ("float32", "float32"):
        raise ExportError(f"TFLite {precision}: input/output are {io[0]}/{io[1]}, expected float32")
