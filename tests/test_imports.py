"""The import graph, read from the source (every import statement, also those inside functions),
checked against rules stated per package (docs/ARCHITECTURE.md), so that a new module is covered
without editing a list:

- the device side (edgeclf.core, edgeclf.runtime, edgeclf.device) never imports the training side
  (edgeclf.training, edgeclf.export, edgeclf.data.packed, edgeclf.data.pipeline), the Keras baseline,
  the experiments, TensorFlow, Keras, tfmot, tf2onnx, onnx, Matplotlib, scikit-learn or Optuna;
- only edgeclf.experiments imports Optuna;
- nothing but the CLI (and `python -m edgeclf`) imports edgeclf.cli;
- no import cycle among edgeclf's modules, counting imports inside functions.
Each rule is a function over a graph; the planted tests show it fails on a planted edge."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "edgeclf"
HEAVY = {"tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "tf2onnx", "onnx", "matplotlib", "sklearn"}
DEVICE_SIDE = ("edgeclf.core", "edgeclf.runtime", "edgeclf.device")
NOT_ON_THE_DEVICE = (
    "edgeclf.training",
    "edgeclf.export",
    "edgeclf.data.packed",
    "edgeclf.data.pipeline",
    "edgeclf.measure.keras_baseline",
    "edgeclf.experiments",
    "edgeclf.cli",
)


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


def within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Module -> the edgeclf modules it imports. A name imported from a module counts as that
    module; `from package import submodule` counts as the submodule alone (the package's __init__
    runs first whatever imports what, so it is no edge of its own)."""
    out = {}
    for name, imported in graph.items():
        resolved = set()
        for target in imported:
            while target and target not in graph:
                target = target.rpartition(".")[0]
            resolved.add(target)
        packages = {t for t in resolved if any(other.startswith(t + ".") for other in resolved)}
        out[name] = {t for t in resolved - packages if t and t != name and t != "edgeclf"}
    return out


def device_violations(graph) -> list[str]:
    found = []
    for name, imported in graph.items():
        if not within(name, DEVICE_SIDE):
            continue
        for target in sorted(imported):
            if within(target, NOT_ON_THE_DEVICE) or target.split(".")[0] in HEAVY | {"optuna"}:
                found.append(f"{name} imports {target}")
    return found


def optuna_violations(graph) -> list[str]:
    found = []
    for name, imported in graph.items():
        if any(i.split(".")[0] == "optuna" for i in imported) and not within(name, ["edgeclf.experiments"]):
            found.append(f"{name} imports optuna")
    return found


def cli_violations(graph) -> list[str]:
    return [
        f"{name} imports {target}"
        for name, imported in graph.items()
        if not within(name, ["edgeclf.cli", "edgeclf.__main__"])
        for target in imported
        if within(target, ["edgeclf.cli"])
    ]


def cycles(graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    succ = edges(graph)
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for root in sorted(succ):
        if root in index:
            continue
        work = [(root, iter(sorted(succ[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter[0]
                counter[0] += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(succ.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


# docs/ARCHITECTURE.md's "may import" column, package by package
ALLOWED = {
    "core": {"core", "data"},
    "runtime": {"core", "runtime"},
    "device": {"core", "runtime", "device"},
    "data": {"core", "runtime", "data"},
    "training": {"core", "data", "runtime", "training"},
    "export": {"core", "data", "runtime", "training", "measure", "export"},
    "measure": {"core", "data", "runtime", "training", "export", "measure"},
    "experiments": {"core", "data", "runtime", "training", "export", "measure", "experiments"},
}


def layer_violations(graph) -> list[str]:
    found = []
    for name, targets in edges(graph).items():
        package = name.split(".")[1] if name.count(".") >= 1 else ""
        for target in sorted(targets):
            other = target.split(".")[1] if target.count(".") >= 1 else target
            if package in ALLOWED and other not in ALLOWED[package]:
                found.append(f"{name} ({package}) imports {target} ({other})")
    return found


def test_packages_import_only_what_docs_architecture_allows():
    assert not layer_violations(GRAPH), layer_violations(GRAPH)
    planted = {**GRAPH, "edgeclf.data.dataset": GRAPH["edgeclf.data.dataset"] | {"edgeclf.training.models"}}
    assert any("edgeclf.data.dataset (data) imports edgeclf.training.models" in v for v in layer_violations(planted))


def test_the_device_side_never_reaches_the_training_side_tensorflow_or_optuna():
    assert not device_violations(GRAPH)


def test_only_the_experiments_import_optuna():
    assert not optuna_violations(GRAPH)


def test_nothing_but_the_cli_imports_the_cli():
    assert not cli_violations(GRAPH)


def test_there_is_no_import_cycle():
    assert not cycles(GRAPH), cycles(GRAPH)


def test_every_module_lives_in_a_package_of_the_architecture():
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert top == ["__init__", "__main__", "demo"], top
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    expected = ["cli", "core", "data", "datasets", "device", "experiments", "export", "measure", "runtime", "training"]
    assert packages == expected  # datasets holds the embedded demo images, no code


@pytest.mark.parametrize(
    "planted, rule, expected",
    [
        (("edgeclf.device.predict", "edgeclf.training.train"), device_violations, "edgeclf.device.predict imports"),
        (("edgeclf.runtime.classifier", "tensorflow"), device_violations, "imports tensorflow"),
        (("edgeclf.core.images", "edgeclf.data.packed.pack"), device_violations, "imports edgeclf.data.packed"),
        (("edgeclf.measure.report", "optuna"), optuna_violations, "edgeclf.measure.report imports optuna"),
        (("edgeclf.export.onnx", "edgeclf.cli.render"), cli_violations, "edgeclf.export.onnx imports edgeclf.cli"),
    ],
)
def test_each_rule_fails_on_a_planted_import(planted, rule, expected):
    module, target = planted
    assert not rule(GRAPH)
    graph = {**GRAPH, module: GRAPH[module] | {target}}
    assert any(expected in line for line in rule(graph)), rule(graph)


def test_a_planted_cycle_is_found_even_through_a_function_level_import(tmp_path):
    lazy = tmp_path / "lazy.py"
    lazy.write_text("def f():\n    from edgeclf.device.watch import watch_folder\n")
    graph = {**GRAPH, "edgeclf.core.images": GRAPH["edgeclf.core.images"] | imports_of(lazy)}
    found = cycles(graph)
    assert found and any({"edgeclf.core.images", "edgeclf.device.watch"} <= set(c) for c in found)


def test_imports_inside_functions_are_seen(tmp_path):
    source = tmp_path / "lazy.py"
    source.write_text(
        "import numpy as np\n\ndef f():\n    import tensorflow as tf\n    from edgeclf.training import models\n"
    )
    assert imports_of(source) == {"numpy", "tensorflow", "edgeclf.training", "edgeclf.training.models"}


def test_only_the_training_side_sets_tensorflows_keras_variable():
    """Before: `import edgeclf` set TF_USE_LEGACY_KERAS for the whole process, even for a program
    that embeds only the runtime (issue 22)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "TF_CPP_MIN_LOG_LEVEL")}
    code = (
        "import os, edgeclf, edgeclf.runtime, edgeclf.device.serve, edgeclf.device.watch, edgeclf.core.config; "
        "assert 'TF_USE_LEGACY_KERAS' not in os.environ; import edgeclf.training; "
        "assert os.environ['TF_USE_LEGACY_KERAS'] == '1'"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-1500:]
