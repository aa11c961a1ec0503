"""Every default lives in configs/default.yaml and nowhere else: no command-line option and no stage
function restates (or bypasses) a configuration key with a literal default of its own."""

import importlib
import inspect
import pkgutil

import typer
import typer.models
import yaml

import edgeclf
from edgeclf.cli import app
from edgeclf.core.config import packaged_config

# Literal option defaults that are not settings: where a command writes by default. Flags (True or
# False) are switches, not settings; every other option default is None (the configuration decides)
# or required.
NOT_SETTINGS = {("compare", "out"), ("demo", "out")}


def _commands(typer_app, prefix=""):
    for info in typer_app.registered_commands:
        yield prefix + (info.name or info.callback.__name__), info.callback
    for group in typer_app.registered_groups:
        yield from _commands(group.typer_instance, prefix + group.name + " ")


def literal_defaults(commands) -> list[str]:
    """Options whose default is a literal value: one that duplicates or bypasses a configs/default.yaml
    key (before issue 22: data pack's shards and encoding, evaluate's split and engine, sweep's jobs,
    runs and threads, verify's threads)."""
    found = []
    for name, callback in commands:
        for param, value in inspect.signature(callback).parameters.items():
            option = value.default
            if not isinstance(option, typer.models.OptionInfo) or (name.split()[-1], param) in NOT_SETTINGS:
                continue
            if option.default is not None and option.default is not ... and not isinstance(option.default, bool):
                found.append(f"edgeclf {name} --{param.replace('_', '-')}: default {option.default!r}")
    return found


def test_no_option_default_bypasses_the_configuration():
    commands = list(_commands(app))
    assert len(commands) >= 15 and not literal_defaults(commands), literal_defaults(commands)

    def planted(threads: int = typer.Option(1, help="a literal default")) -> None: ...

    assert literal_defaults([("planted", planted)]) == ["edgeclf planted --threads: default 1"]


def setting_names() -> set[str]:
    """The leaf names of configs/default.yaml (top_k, timeout, shards, ...) and the top-level seed."""
    config = yaml.safe_load(packaged_config("default.yaml").read_text(encoding="utf-8"))
    return {key for section in config.values() if isinstance(section, dict) for key in section} | {"seed"}


# Parameters named like a setting whose literal default is not that setting, each with the reason.
NOT_SETTING_PARAMETERS = {
    # the decoder's ceiling (edgeclf.core.images.MAX_PIXELS); predict.max_pixels may only lower it
    ("edgeclf.core.images.open_rgb", "max_pixels"),
    ("edgeclf.core.images.load_image", "max_pixels"),
    ("edgeclf.runtime.answers.decode_timed", "max_pixels"),
    # the embedding API's own behaviour (the engine's fast kernels, on the CPU); commands pass predict.* / bench.*
    ("edgeclf.runtime.open.open_classifier", "kernels"),
    ("edgeclf.runtime.classifier.Classifier.__init__", "kernels"),
    ("edgeclf.runtime.classifier.Classifier.__init__", "device"),
    ("edgeclf.runtime.backends.open_backend", "kernels"),
    ("edgeclf.runtime.backends.open_backend", "device"),
    ("edgeclf.runtime.backends.litert_backend.LiteRTBackend.__init__", "kernels"),
    # images per engine call (memory), not training's data.batch_size
    ("edgeclf.runtime.classifier.Classifier.predict_pixels", "batch_size"),
    ("edgeclf.runtime.classifier.Classifier.predict_files", "batch_size"),
    ("edgeclf.measure.keras_baseline.KerasClassifier.predict_pixels", "batch_size"),
    # fields of records, not settings: '' is the format's default engine; the duplicates found
    ("edgeclf.runtime.artifact.ArtifactInfo.__init__", "engine"),
    ("edgeclf.export.formats.ArtifactSpec.__init__", "engine"),
    ("edgeclf.data.dataset.Dataset.__init__", "duplicates"),
}


def public_functions():
    """(dotted name, function) of every public function and method defined in edgeclf outside the CLI."""
    for info in pkgutil.walk_packages(edgeclf.__path__, "edgeclf."):
        if info.name.startswith("edgeclf.cli") or info.name == "edgeclf.__main__":
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__ or name.startswith("_"):
                continue
            if inspect.isfunction(obj):
                yield f"{module.__name__}.{name}", obj
            elif inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if inspect.isfunction(member) and (attr == "__init__" or not attr.startswith("_")):
                        yield f"{module.__name__}.{name}.{attr}", member


def setting_defaults(functions, names: set[str]) -> list[str]:
    """Parameters named like a configuration key with a literal (not None) default."""
    found = []
    for qualname, fn in functions:
        for param, value in inspect.signature(fn).parameters.items():
            if param not in names or value.default in (inspect.Parameter.empty, None):
                continue
            if (qualname, param) not in NOT_SETTING_PARAMETERS:
                found.append(f"{qualname}({param}={value.default!r})")
    return found


def test_no_stage_signature_restates_a_setting():
    """Before issue 22: make_server's host, port, top_k, timeout, max_connections, backlog and body limit,
    watch's interval and settle, predict's top_k, pack's shards, encoding and seed, run_sweep's jobs,
    runs and threads, evaluate_run's split and engine, verify's threads, discover's duplicates."""
    functions = list(public_functions())
    names = setting_names()
    assert len(functions) > 300 and {"top_k", "timeout", "shards", "threads", "interval"} <= names
    assert not setting_defaults(functions, names), setting_defaults(functions, names)

    def planted(folder, interval: float = 0.5, stop=None): ...

    assert setting_defaults([("planted", planted)], names) == ["planted(interval=0.5)"]
