"""Backbone weights read from a Keras file by layer name, without rebuilding the file's model.

Any Keras file that holds the chosen backbone is accepted: `.h5` (a whole model or a weights-only
file, as Keras 2 / tf_keras or Keras 3 write it) and `.keras` (the zip of config.json and
model.weights.h5, either Keras), the backbone flat in the model or nested inside one layer (Keras 3
applications are usually used that way: `mobilenetv2_1.00_160` as one layer of the model). Nothing
in the file is executed or deserialised: h5py reads numeric datasets, config.json is read as JSON
(never given to Keras), so a Lambda layer, a custom object or a pickle in the file is inert.

Where the weights are, per file kind:

- `.h5` from tf_keras / Keras 2: layer names in the `layer_names` attribute (of `model_weights/`
  in a whole model); a layer's variables in its group's `weight_names`: `LAYER/kernel:0`, or for a
  nested backbone `INNER/kernel:0` in the outer layer's group.
- `.h5` from Keras 3: the same without `:0`; a depthwise kernel is `kernel` (tf_keras:
  `depthwise_kernel`).
- `.keras` from either: config.json's layer tree names the paths of model.weights.h5,
  `layers/<snake_case(class)>[_N]/vars/<i>`, in the layer's weights order.

Variable names are compared after these mappings (VARIABLE_ALIASES): the `:0` suffix dropped,
`depthwise_kernel` = `kernel`. A .keras file's variables have no names: they are taken in order
(Keras saves a layer's trainable then non-trainable variables, the order of `layer.weights`).
Every variable's shape is checked against the target layer before its data is read, so what is
read is bounded by the target model's size whatever the file declares.
"""

from __future__ import annotations

import json
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeclf.core.errors import WeightsError
from edgeclf.runtime.integrity import file_sha256

MAX_FILE_BYTES = 1 << 30  # a MobileNetV3-Large whole model with its optimizer is about 60 MB
MAX_ZIP_ENTRIES = 1000
MAX_CONFIG_BYTES = 16 << 20
VARIABLE_ALIASES = {"depthwise_kernel": "kernel"}
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclass
class FileVariable:
    """One variable in the file: its name (None in a .keras file), shape, and how to read it."""

    name: str | None
    shape: tuple[int, ...]
    dtype: str  # numpy kind: f (float), i/u (integer); nothing else is read
    dataset: str  # path inside the HDF5 file


@dataclass
class WeightsFile:
    """The layers a Keras file holds weights for (name -> variables in order), and how it was read."""

    path: Path
    sha256: str
    kind: str  # h5 | keras
    keras_version: str | None
    layers: dict[str, list[FileVariable]] = field(default_factory=dict)
    h5_path: Path | None = None  # the HDF5 file the datasets are in (a temporary copy for .keras)
    nested_in: list[str] = field(default_factory=list)  # outer layers that held nested layers


def variable_key(name: str) -> str:
    """A variable's name as compared across Keras versions: `block_1_depthwise/depthwise_kernel:0`
    and `kernel` are both `kernel`."""
    base = name.rsplit("/", 1)[-1].split(":", 1)[0]
    return VARIABLE_ALIASES.get(base, base)


def to_snake_case(name: str) -> str:
    """Keras' own naming of a saved object's path (keras.src.utils.naming.to_snake_case)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def open_weights_file(path: Path, workdir: Path) -> WeightsFile:
    """Index a Keras .h5 or .keras file by layer name (nothing is read but metadata). workdir holds
    the extracted model.weights.h5 of a .keras file. Raises WeightsError naming the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise WeightsError(f"--weights {path}: cannot read it ({exc.strerror})") from None
    if size > MAX_FILE_BYTES:
        raise WeightsError(f"--weights {path}: {size:,} bytes is over the {MAX_FILE_BYTES:,}-byte limit")
    sha256 = file_sha256(path)
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head == HDF5_SIGNATURE:
        found = WeightsFile(path, sha256, "h5", None, h5_path=path)
        _index_h5(found)
    elif head[:4] == b"PK\x03\x04":
        found = WeightsFile(path, sha256, "keras", None)
        _index_keras_zip(found, Path(workdir))
    else:
        raise WeightsError(f"--weights {path}: not a Keras file (expected HDF5 .h5 or a .keras zip)")
    if not found.layers:
        raise WeightsError(f"--weights {path}: the file holds no layer weights")
    return found


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _index_h5(found: WeightsFile) -> None:
    import h5py

    try:
        with h5py.File(found.h5_path, "r") as h5:
            version = h5.attrs.get("keras_version")
            found.keras_version = _text(version) if version is not None else None
            root = h5["model_weights"] if "model_weights" in h5 else h5
            if "layer_names" not in root.attrs:
                raise WeightsError(
                    f"--weights {found.path}: an HDF5 file without Keras' layer_names "
                    "(not a Keras model or weights file)"
                )
            for outer in (_text(n) for n in root.attrs["layer_names"]):
                group = root.get(outer)
                if group is None:
                    raise WeightsError(f"--weights {found.path}: layer {outer} is listed but has no group")
                for weight in (_text(n) for n in group.attrs.get("weight_names", [])):
                    parts = weight.split("/")
                    layer = parts[-2] if len(parts) > 1 else outer
                    dataset = group.get(weight)
                    if not isinstance(dataset, h5py.Dataset):
                        raise WeightsError(f"--weights {found.path}: variable {weight} of {outer} is missing")
                    if layer != outer and outer not in found.nested_in:
                        found.nested_in.append(outer)
                    _add(found, layer, FileVariable(weight, tuple(dataset.shape), dataset.dtype.kind, dataset.name))
    except WeightsError:
        raise
    except Exception as exc:
        raise WeightsError(f"--weights {found.path}: cannot read this HDF5 file ({short_error(exc)})") from None


def _add(found: WeightsFile, layer: str, variable: FileVariable) -> None:
    variables = found.layers.setdefault(layer, [])
    if variable.name is not None and any(v.name == variable.name for v in variables):
        raise WeightsError(f"--weights {found.path}: layer {layer} appears twice in the file; cannot tell which to use")
    variables.append(variable)


def _index_keras_zip(found: WeightsFile, workdir: Path) -> None:
    """A .keras zip: config.json's layer tree names the paths of model.weights.h5."""
    try:
        archive = zipfile.ZipFile(found.path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise WeightsError(f"--weights {found.path}: not a readable .keras zip ({short_error(exc)})") from None
    with archive:
        config = _read_keras_zip(found, archive, workdir)
    paths = _keras_layer_paths(config, found.path)
    import h5py

    try:
        with h5py.File(found.h5_path, "r") as h5:
            for saved_path, entries in sorted(_saved_variables(h5).items()):
                if saved_path.startswith("layers/"):  # not a compiled model's metrics/ and optimizer/ state
                    _add_saved_layer(found, paths, saved_path, entries)
    except WeightsError:
        raise
    except Exception as exc:
        raise WeightsError(f"--weights {found.path}: cannot read its model.weights.h5 ({short_error(exc)})") from None


def _read_keras_zip(found: WeightsFile, archive: zipfile.ZipFile, workdir: Path):
    """config.json (returned), the Keras version from metadata.json, and model.weights.h5 extracted
    into workdir, each bounded."""
    members = archive.infolist()
    if len(members) > MAX_ZIP_ENTRIES:
        raise WeightsError(f"--weights {found.path}: {len(members):,} zip entries (at most {MAX_ZIP_ENTRIES})")
    names = {m.filename for m in members}
    for needed in ("config.json", "model.weights.h5"):
        if needed not in names:
            raise WeightsError(f"--weights {found.path}: a .keras file without {needed}")
    config = _json_member(archive, "config.json", found.path)
    if "metadata.json" in names:
        metadata = _json_member(archive, "metadata.json", found.path)
        if isinstance(metadata, dict) and isinstance(metadata.get("keras_version"), str):
            found.keras_version = metadata["keras_version"][:40]
    found.h5_path = workdir / "model.weights.h5"
    _extract_bounded(archive, "model.weights.h5", found.h5_path, found.path)
    return config


def _saved_variables(h5) -> dict[str, list[tuple[int, object]]]:
    """{saved layer path: [(variable index, h5py dataset)]} of a Keras 3 model.weights.h5."""
    import h5py

    variables: dict[str, list[tuple[int, h5py.Dataset]]] = {}

    def visit(name, item):
        match = re.fullmatch(r"(.*)/vars/(\d+)", name)
        if isinstance(item, h5py.Dataset) and match:
            variables.setdefault(match[1], []).append((int(match[2]), item))

    h5.visititems(visit)
    return variables


def _add_saved_layer(found: WeightsFile, paths: dict[str, str], saved_path: str, entries: list) -> None:
    """One saved layer's variables, in order, under the layer name config.json gives its path; the
    outer models it is nested in are noted."""
    layer = paths.get(saved_path)
    if layer is None:
        raise WeightsError(
            f"--weights {found.path}: model.weights.h5 holds {saved_path}, which config.json does not name"
        )
    if "/layers/" in saved_path:
        outer = paths.get(saved_path.rsplit("/layers/", 1)[0])
        if outer and outer not in found.nested_in:
            found.nested_in.append(outer)
    for _, dataset in sorted(entries, key=lambda e: e[0]):
        _add(found, layer, FileVariable(None, tuple(dataset.shape), dataset.dtype.kind, dataset.name))


def _json_member(archive: zipfile.ZipFile, name: str, path: Path):
    info = archive.getinfo(name)
    if info.file_size > MAX_CONFIG_BYTES:
        raise WeightsError(f"--weights {path}: {name} is {info.file_size:,} bytes (at most {MAX_CONFIG_BYTES:,})")
    try:
        with archive.open(info) as member:
            raw = member.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise WeightsError(f"--weights {path}: {name} inflates past {MAX_CONFIG_BYTES:,} bytes")
        return json.loads(raw.decode("utf-8"))
    except WeightsError:
        raise
    except (RecursionError, ValueError, UnicodeDecodeError, zipfile.BadZipFile, RuntimeError, NotImplementedError) as e:
        raise WeightsError(f"--weights {path}: {name} is not readable JSON ({short_error(e)})") from None


def _extract_bounded(archive: zipfile.ZipFile, name: str, dest: Path, path: Path) -> None:
    """Copy a member out, counting the bytes that really inflate (the header's size is not trusted)."""
    written = 0
    try:
        with archive.open(name) as member, open(dest, "wb") as out:
            for chunk in iter(lambda: member.read(1 << 20), b""):
                written += len(chunk)
                if written > MAX_FILE_BYTES:
                    raise WeightsError(f"--weights {path}: {name} inflates past {MAX_FILE_BYTES:,} bytes")
                out.write(chunk)
    except WeightsError:
        raise
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError) as exc:
        raise WeightsError(f"--weights {path}: cannot extract {name} ({short_error(exc)})") from None


def _keras_layer_paths(config, path: Path) -> dict[str, str]:
    """{path in model.weights.h5: layer name} from config.json's layer tree, named as Keras' saving
    library names them: snake_case of the class, `_1`, `_2`... for later layers of the same class
    in the same container, nested containers under `<their path>/layers/`."""
    paths: dict[str, str] = {}

    def walk(layers, prefix: str, depth: int) -> None:
        if depth > 16 or not isinstance(layers, list):
            raise WeightsError(f"--weights {path}: config.json's layer tree is malformed or too deep")
        used: dict[str, int] = {}
        for layer in layers:
            if not isinstance(layer, dict) or not isinstance(layer.get("config"), dict):
                raise WeightsError(f"--weights {path}: config.json has a malformed layer entry")
            base = to_snake_case(str(layer.get("class_name", "")))
            used[base] = used.get(base, -1) + 1
            saved = f"{prefix}layers/{base}" + (f"_{used[base]}" if used[base] else "")
            name = layer["config"].get("name")
            if isinstance(name, str):
                paths[saved] = name
            if "layers" in layer["config"]:
                walk(layer["config"]["layers"], f"{saved}/", depth + 1)

    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise WeightsError(f"--weights {path}: config.json is not a Keras model configuration")
    walk(config["config"].get("layers", []), "", 0)
    return paths


@dataclass(frozen=True)
class LoadedBackbone:
    """What load_backbone copied, recorded in the run's metadata (weights.file)."""

    sha256: str
    kind: str
    keras_version: str | None
    nested_in: list[str]
    matched_layers: int
    backbone_layers: int

    def to_json(self) -> dict:
        return {
            "sha256": self.sha256,
            "kind": self.kind,
            "keras_version": self.keras_version,
            "nested_in": self.nested_in,
            "matched_layers": self.matched_layers,
            "backbone_layers_with_weights": self.backbone_layers,
        }


def load_backbone(model, backbone: list[str], path: Path, description: str) -> LoadedBackbone:
    """Copy every backbone layer's weights from the Keras file at path into model, matched by layer
    name and variable shape. All or nothing: a file that lacks a backbone layer or has another
    shape for one is refused (WeightsError naming the first such layer) before any weight is set.
    description names the target in messages (e.g. "mobilenet_v2 alpha 0.35")."""
    import h5py

    with tempfile.TemporaryDirectory(prefix="edgeclf-weights-") as workdir:
        found = open_weights_file(path, Path(workdir))
        targets = [model.get_layer(name) for name in backbone]
        targets = [layer for layer in targets if layer.weights]
        missing = [layer.name for layer in targets if layer.name not in found.layers]
        if missing:
            raise WeightsError(
                f"--weights {path}: only {len(targets) - len(missing)} of {len(targets)} backbone layers of "
                f"{description} are in the file (first missing: {missing[0]}); use a file of the same model"
            )
        plan = [(layer, _pair(layer, found.layers[layer.name], path, description)) for layer in targets]
        with h5py.File(found.h5_path, "r") as h5:
            values = [(layer, [np.asarray(h5[v.dataset][()]) for v in variables]) for layer, variables in plan]
        for layer, arrays in values:
            layer.set_weights(arrays)
        return LoadedBackbone(found.sha256, found.kind, found.keras_version, found.nested_in, len(plan), len(targets))


def _pair(layer, variables: list[FileVariable], path: Path, description: str) -> list[FileVariable]:
    """The file's variables for this layer in the layer's weights order (by name when the file has
    names, else in order), each with the target's shape."""
    wanted = [(variable_key(w.name), tuple(int(d) for d in w.shape)) for w in layer.weights]
    if len(variables) != len(wanted):
        raise WeightsError(
            f"--weights {path}: layer {layer.name} has {len(variables)} variables in the file, "
            f"{len(wanted)} in {description}; use a file of the same model"
        )
    if all(v.name is not None for v in variables):
        by_key = {variable_key(v.name): v for v in variables}
        ordered = [by_key.get(key) for key, _ in wanted]
        if None in ordered:
            raise WeightsError(
                f"--weights {path}: layer {layer.name} has variables {sorted(by_key)} in the file, "
                f"{[k for k, _ in wanted]} in {description}"
            )
    else:
        ordered = list(variables)
    for variable, (key, shape) in zip(ordered, wanted, strict=True):
        if variable.dtype not in "fiu":
            raise WeightsError(f"--weights {path}: layer {layer.name} {key} is not numeric in the file")
        if variable.shape != shape:
            raise WeightsError(
                f"--weights {path}: layer {layer.name} {key} has shape {variable.shape} in the file, {shape} in "
                f"{description}; use a file of the same model and alpha"
            )
    return ordered


def short_error(exc: Exception) -> str:
    """An exception's message on one line, at most 160 characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."
