"""The typed configuration: configs/default.yaml < --config FILE < command-line options.

Every default lives in edgeclf/configs/default.yaml (configs/default.yaml links to it); the models
below only say what is allowed. Unknown keys and bad values raise ConfigError with one line that
names the key (or the command-line option) and the file it came from.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgeclf.core.bounded import BoundedReadError, excerpt
from edgeclf.core.bounded import read_yaml as bounded_yaml
from edgeclf.core.errors import ConfigError
from edgeclf.core.images import MAX_PIXELS

ModelName = Literal["mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "small_cnn"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitConfig(_Strict):
    train: float = Field(gt=0, lt=1)
    val: float = Field(gt=0, lt=1)
    test: float = Field(ge=0, lt=1)

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitConfig:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must be 1, got {total:g}")
        return self


class DataConfig(_Strict):
    image_size: int = Field(ge=32, le=1024, description="MobileNet needs at least 32 px")
    batch_size: int = Field(ge=1, le=4096)
    split: SplitConfig
    cache: Literal["disk", "memory", "none"]
    shuffle_buffer: int = Field(ge=1)
    duplicates: Literal["warn", "drop"]


class AugmentConfig(_Strict):
    enabled: bool
    horizontal_flip: bool
    rotation: float = Field(ge=0, le=0.5)
    translation: float = Field(ge=0, lt=1)
    zoom: float = Field(ge=0, lt=1)
    contrast: float = Field(ge=0, lt=1)


class ModelConfig(_Strict):
    name: ModelName
    alpha: float = Field(gt=0, le=2)
    dropout: float = Field(ge=0, lt=1)
    weights: str = Field(min_length=1)
    scratch_bn_momentum: float = Field(gt=0, lt=1)


class TrainConfig(_Strict):
    epochs: int = Field(ge=0)
    learning_rate: float = Field(gt=0)
    fine_tune_epochs: int = Field(ge=0)
    fine_tune_layers: int = Field(ge=0)
    fine_tune_learning_rate: float = Field(gt=0)
    label_smoothing: float = Field(ge=0, lt=1)
    early_stopping_patience: int = Field(ge=1)
    schedule: Literal["plateau", "cosine"]
    reduce_lr_patience: int = Field(ge=1)
    reduce_lr_factor: float = Field(gt=0, lt=1)
    min_learning_rate: float = Field(ge=0)
    precise_bn_batches: int = Field(ge=0, le=10000)
    deterministic: bool
    tensorboard: bool
    tensorboard_histograms: int = Field(ge=0, le=10_000)
    mixed_precision: bool
    strategy: Literal["auto", "none", "mirrored", "multiworker"]
    batch_size_per: Literal["global", "replica"]
    learning_rate_scaling: Literal["none", "linear"]
    class_weights: Literal["none", "balanced"] | dict[str, Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)]]

    @model_validator(mode="after")
    def _some_training(self) -> TrainConfig:
        if self.epochs + self.fine_tune_epochs < 1:
            raise ValueError("epochs + fine_tune_epochs must be at least 1")
        return self


class QatConfig(_Strict):
    epochs: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    early_stopping_patience: int = Field(ge=1)


class ExportConfig(_Strict):
    formats: list[Literal["tflite", "onnx", "openvino"]] = Field(min_length=1)
    float16: bool
    bf16: bool
    dynamic: bool
    int8_source: Literal["auto", "qat", "ptq", "both"]
    int8_input: Literal["uint8", "int8"]
    calibration_images: int = Field(ge=1)
    max_drop: float = Field(ge=0)
    onnx_opset: int = Field(ge=13)
    onnx_reduce_range: Literal["auto", "true", "false"]
    fp32_tolerance: float = Field(gt=0)
    fp16_tolerance: float = Field(gt=0)
    bf16_tolerance: float = Field(gt=0)
    bf16_min_agreement: float = Field(ge=0, le=1)
    gate_images: int = Field(ge=1, le=100_000)
    gate_confidence: float = Field(gt=0.5, lt=1)
    parity_images: int = Field(ge=1, le=64)
    parity_spread_images: int = Field(ge=0, le=5000)
    repair: bool
    repair_max_layers: int = Field(ge=1, le=10_000)
    repair_ranking: Literal["output", "debugger"]
    repair_debug_images: int = Field(ge=1, le=10_000)


# threads, everywhere: N inference threads, 0 every core (edgeclf.runtime.machine.inference_threads);
# predict's may also be null, the engine's own default
Threads = Annotated[int, Field(ge=0, le=1024)]


class BenchConfig(_Strict):
    threads: Threads
    warmup: int = Field(ge=0)
    runs: int | None = Field(ge=1)
    seconds: float | None = Field(gt=0)
    batch_sizes: list[Annotated[int, Field(ge=1, le=4096)]] = Field(min_length=1)
    device: Literal["cpu", "gpu"]
    engine: Literal["auto", "onnxruntime", "openvino"]

    @model_validator(mode="after")
    def _one_budget(self) -> BenchConfig:
        if (self.runs is None) == (self.seconds is None):
            raise ValueError("give either runs or seconds (the other null)")
        return self


class PredictConfig(_Strict):
    top_k: int = Field(ge=1)
    kernels: Literal["fast", "reference"]
    threads: Threads | None
    engine: Literal["auto", "onnxruntime", "openvino"]
    max_pixels: int = Field(ge=1, le=MAX_PIXELS)


class WatchConfig(_Strict):
    interval: float = Field(gt=0)
    settle: float = Field(ge=0)


class ServeConfig(_Strict):
    host: str = Field(min_length=1)
    port: int = Field(ge=0, le=65535)
    max_body_bytes: int = Field(ge=1)
    timeout: float = Field(gt=0, le=3600)
    max_connections: int = Field(ge=1, le=10_000)
    backlog: int = Field(ge=1, le=65_535)
    decode_memory_mb: Literal["auto"] | int = Field(union_mode="left_to_right")

    @field_validator("decode_memory_mb")
    @classmethod
    def _positive(cls, value):
        if value != "auto" and value < 1:
            raise ValueError("give a number of megabytes (at least 1) or auto")
        return value


class PackConfig(_Strict):
    shards: int = Field(ge=0, le=100_000)
    encoding: Literal["png", "raw"]


class EvaluateConfig(_Strict):
    split: Literal["train", "val", "test"]
    engine: Literal["auto", "onnxruntime", "openvino"]


class SweepConfig(_Strict):
    jobs: int = Field(ge=1, le=64)
    runs: int = Field(ge=10, le=100_000)
    threads: Threads


class VerifyConfig(_Strict):
    threads: Threads | None


class ReportConfig(_Strict):
    gallery_images: int = Field(ge=0, le=64)
    thumbnail_px: int = Field(ge=32, le=256)
    explain_px: int = Field(ge=32, le=1024)


class Config(_Strict):
    seed: int = Field(ge=0)
    data: DataConfig
    augment: AugmentConfig
    model: ModelConfig
    train: TrainConfig
    qat: QatConfig
    export: ExportConfig
    bench: BenchConfig
    predict: PredictConfig
    watch: WatchConfig
    serve: ServeConfig
    pack: PackConfig
    evaluate: EvaluateConfig
    sweep: SweepConfig
    verify: VerifyConfig
    report: ReportConfig

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def packaged_config(name: str) -> Path:
    """Path of a YAML file shipped in edgeclf/configs (default.yaml, demo.yaml)."""
    return Path(str(resources.files("edgeclf") / "configs" / name))


MAX_CONFIG_BYTES = 1024 * 1024  # a settings file larger than this is refused before it is read


def read_yaml(path: Path) -> dict[str, Any]:
    """A settings file through the bounded reader (edgeclf.core.bounded: size, UTF-8, depth, aliases)."""
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        data = bounded_yaml(path, MAX_CONFIG_BYTES, f"config file {path}")
    except BoundedReadError as exc:
        raise ConfigError(f"{exc}; not a settings file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping of settings at the top level")
    return data


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge override into a copy of base (mappings merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _nest(dotted: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in dotted.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def load_config(
    files: list[Path] | tuple[Path, ...] = (),
    overrides: dict[str, Any] | None = None,
    option_names: dict[str, str] | None = None,
) -> Config:
    """Resolve default.yaml, then each file in order, then dotted-key overrides (None = not given).

    option_names maps a dotted key to the command-line option that set it, so that an error
    names what the user typed (``--image-size``) rather than the key (``data.image_size``).
    """
    source = packaged_config("default.yaml")
    data = read_yaml(source)
    for source in map(Path, files):
        data = merge(data, read_yaml(source))
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    data = merge(data, _nest(given))
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, given, option_names or {}, str(source))) from None


def _describe(exc: ValidationError, given: dict[str, Any], option_names: dict[str, str], source: str) -> str:
    err = exc.errors()[0]
    key = ".".join(str(part) for part in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"config {source}: unknown key '{key}'"
    message = err["msg"].removeprefix("Value error, ")
    typed = next((k for k in given if key == k or key.startswith(k + ".")), None)  # an item of a list option
    if typed is not None:
        option = option_names.get(typed, typed)
        return f"{option} {excerpt(given[typed])}: {message}"
    value = f" (got {excerpt(err['input'])})" if not isinstance(err.get("input"), dict) else ""
    return f"config {source}: {key or 'settings'}: {message}{value}"
