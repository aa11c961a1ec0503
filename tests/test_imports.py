"""The import graph, read from the source (every import statement, also those inside functions):
what runs on the device never reaches TensorFlow or the training side, and no stage imports the CLI."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "edgeclf"
TRAINING_PACKAGES = {
    "tensorflow",
    "tf_keras",
    "tensorflow_model_optimization",
    "tf2onnx",
    "onnx",
    "matplotlib",
    "sklearn",
}
# What `edgeclf predict/watch/serve/verify` run on a device (the plain install). bench and its worker
# also run there, on an export folder; their Keras branch (edgeclf.keras_baseline) is taken only for a
# run directory, and the plain-install test runs them without TensorFlow.
DEVICE_MODULES = [
    "edgeclf.runtime",
    "edgeclf.predict",
    "edgeclf.watch",
    "edgeclf.serve",
    "edgeclf.unpack",
    "edgeclf.parity",
    "edgeclf.signals",
]
TRAINING_MODULES = {
    "edgeclf.train",
    "edgeclf.models",
    "edgeclf.qat",
    "edgeclf.pipeline",
    "edgeclf.callbacks",
    "edgeclf.export",
    "edgeclf.evaluate",
    "edgeclf.curves",
    "edgeclf.plots",
    "edgeclf.weights",
    "edgeclf.demo",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module named by an import statement in the file (absolute names)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


GRAPH = {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def closure(start: str) -> set[str]:
    """start and every edgeclf module it reaches (a package's __init__ counts as imported with it)."""
    seen, todo = set(), [m for m in GRAPH if m == start or m.startswith(start + ".")]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in GRAPH]
        todo += [m for m in GRAPH[name] if m in GRAPH]
    return seen


@pytest.mark.parametrize("start", DEVICE_MODULES)
def test_the_device_side_never_reaches_tensorflow_or_the_training_side(start):
    reached = closure(start)
    assert reached, start
    training = sorted(reached & TRAINING_MODULES)
    assert not training, f"{start} reaches the training side through {training}"
    for name in reached:
        heavy = sorted({i.split(".")[0] for i in GRAPH[name]} & TRAINING_PACKAGES)
        assert not heavy, f"{start} reaches {name}, which imports {heavy}"


def test_no_stage_imports_the_cli():
    for name, imported in GRAPH.items():
        if not name.startswith("edgeclf.cli") and name != "edgeclf.__main__":
            assert not [i for i in imported if i.startswith("edgeclf.cli")], f"{name} imports the CLI"


def test_imports_inside_functions_are_seen(tmp_path):
    """The graph is read from the source, so a lazy import inside a function (as the Keras baseline's
    `import tensorflow` was when it lived in runtime/) counts like a top-level one."""
    source = tmp_path / "lazy.py"
    source.write_text(
        "import numpy as np\n\ndef f():\n    import tensorflow as tf\n    from edgeclf.models import load_model\n"
    )
    assert imports_of(source) == {"numpy", "tensorflow", "edgeclf.models", "edgeclf.models.load_model"}
    assert "edgeclf.keras_baseline" not in closure("edgeclf.runtime")
