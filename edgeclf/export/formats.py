"""The table of exportable artifacts: one row per (format, precision, source model).

This table drives what `edgeclf export` writes, how each artifact is checked, and (later) what is
evaluated and benchmarked.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeclf.core.config import ExportConfig
from edgeclf.core.precision import Precision


@dataclass(frozen=True)
class ArtifactSpec:
    name: str
    format: str  # tflite | onnx
    precision: Precision
    source: str  # float (model.keras) | qat (qat_model.h5)
    filename: str
    check: str  # "close": probabilities within a tolerance of the source; "accuracy": drop and agreement
    engine: str = ""  # "": the format's default engine (LiteRT, ONNX Runtime); openvino
    shares: str | None = None  # the artifact whose file this one runs on another engine (not written again)
    repairs: tuple[str, ...] = ()  # int8-mixed: the artifacts whose failure it repairs (edgeclf.export.repair)

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", Precision(self.precision))

    @property
    def integer(self) -> bool:
        return self.precision.is_integer

    @property
    def group(self) -> str:
        """Which export.formats entry selects it: tflite, onnx or openvino."""
        return self.engine or self.format


SPECS = (
    ArtifactSpec("tflite-fp32", "tflite", "fp32", "float", "model_fp32.tflite", "close"),
    ArtifactSpec("tflite-fp16", "tflite", "fp16", "float", "model_fp16.tflite", "close"),
    ArtifactSpec("tflite-dynamic", "tflite", "dynamic", "float", "model_dynamic.tflite", "accuracy"),
    ArtifactSpec("tflite-int8-qat", "tflite", "int8-qat", "qat", "model_int8_qat.tflite", "accuracy"),
    ArtifactSpec("tflite-int8-ptq", "tflite", "int8-ptq", "float", "model_int8_ptq.tflite", "accuracy"),
    ArtifactSpec("onnx-fp32", "onnx", "fp32", "float", "model_fp32.onnx", "close"),
    ArtifactSpec("onnx-int8-ptq", "onnx", "int8-ptq", "float", "model_int8_ptq.onnx", "accuracy"),
    # The ONNX files on OpenVINO: fp32 pinned to f32, bf16 as a precision of its own, int8 with its
    # float parts in f32. Validated on OpenVINO like any other artifact.
    ArtifactSpec("openvino-fp32", "onnx", "fp32", "float", "model_fp32.onnx", "close", "openvino", "onnx-fp32"),
    ArtifactSpec("openvino-bf16", "onnx", "bf16", "float", "model_fp32.onnx", "close", "openvino", "onnx-fp32"),
    ArtifactSpec(
        "openvino-int8-ptq", "onnx", "int8-ptq", "float", "model_int8_ptq.onnx", "accuracy", "openvino", "onnx-int8-ptq"
    ),
    # OpenVINO's own quantizer (NNCF) on the float ONNX: its QDQ file, validated on OpenVINO
    ArtifactSpec("openvino-int8-nncf", "onnx", "int8-ptq", "float", "model_int8_nncf.onnx", "accuracy", "openvino"),
    # Repairs (export.repair): written only when an int8 artifact fails its gate, from the float model
    # with the fewest error-prone layers kept in float that pass it. A QAT file cannot keep chosen
    # layers in float, so a failed tflite-int8-qat is repaired from post-training quantization too.
    ArtifactSpec(
        "tflite-int8-ptq-mixed",
        "tflite",
        "int8-mixed",
        "float",
        "model_int8_ptq_mixed.tflite",
        "accuracy",
        repairs=("tflite-int8-ptq", "tflite-int8-qat"),
    ),
    ArtifactSpec(
        "onnx-int8-ptq-mixed",
        "onnx",
        "int8-mixed",
        "float",
        "model_int8_ptq_mixed.onnx",
        "accuracy",
        repairs=("onnx-int8-ptq", "openvino-int8-ptq", "openvino-int8-nncf"),
    ),
    ArtifactSpec(
        "openvino-int8-ptq-mixed",
        "onnx",
        "int8-mixed",
        "float",
        "model_int8_ptq_mixed.onnx",
        "accuracy",
        "openvino",
        "onnx-int8-ptq-mixed",
        repairs=("onnx-int8-ptq", "openvino-int8-ptq", "openvino-int8-nncf"),
    ),
)


def select(cfg: ExportConfig, int8: bool, has_qat: bool) -> list[ArtifactSpec]:
    """The artifacts an export writes. Float ones always; int8 with --int8: for TFLite from the QAT
    model when the run has one (int8_source auto), PTQ otherwise, or both; ONNX int8 is made by
    onnxruntime static quantization of the float ONNX (labelled int8-ptq). With `openvino` in
    formats, the ONNX files chosen are also entered on OpenVINO (and bf16 with export.bf16); whether
    OpenVINO is installed and the CPU has bf16 is the export's to check."""
    wanted = {"fp32"}
    if cfg.float16:
        wanted.add("fp16")
    if cfg.bf16:
        wanted.add("bf16")
    if cfg.dynamic:
        wanted.add("dynamic")
    if int8:
        source = cfg.int8_source
        if source == "auto":
            source = "qat" if has_qat else "ptq"
        wanted |= {"int8-qat", "int8-ptq"} if source == "both" else {f"int8-{source}"}
        wanted.add("onnx:int8-ptq")
    chosen = []
    for spec in SPECS:
        if spec.repairs or not _in_formats(spec, cfg.formats):
            continue
        if spec.shares and spec.shares not in {c.name for c in chosen}:
            continue
        if spec.format == "onnx" and spec.integer:
            if "onnx:int8-ptq" in wanted:
                chosen.append(spec)
        elif spec.precision in wanted:
            chosen.append(spec)
    return chosen


def _in_formats(spec: ArtifactSpec, formats: list[str]) -> bool:
    """A row that export.formats selects: its group listed; an OpenVINO row only with onnx listed too
    (OpenVINO runs the ONNX files)."""
    return spec.group in formats and (spec.engine != "openvino" or "onnx" in formats)


def repairs_for(failed: list[str], cfg: ExportConfig) -> list[ArtifactSpec]:
    """The repair artifacts to make for the failed artifacts named (in table order): each
    int8-mixed row that repairs one of them, with its shared-file rows on other engines that the
    export's formats select."""
    chosen: list[ArtifactSpec] = []
    for spec in SPECS:
        if not spec.repairs or not set(spec.repairs) & set(failed) or not _in_formats(spec, cfg.formats):
            continue
        if spec.shares and spec.shares not in {c.name for c in chosen}:
            continue
        chosen.append(spec)
    return chosen


def spec_named(name: str) -> ArtifactSpec:
    """The format table's row for an artifact name (KeyError when there is none)."""
    return {spec.name: spec for spec in SPECS}[name]
