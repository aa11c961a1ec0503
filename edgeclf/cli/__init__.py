"""The `edgeclf` command line: one module per command, each a thin layer over one library call."""

import sys

import typer

from edgeclf.cli import (
    bench,
    compare,
    data,
    demo,
    doctor,
    evaluate,
    explain,
    export,
    predict,
    qat,
    report,
    serve,
    sweep,
    train,
    unpack,
    validate,
    verify,
    watch,
)
from edgeclf.cli._common import verbose_stages
from edgeclf.cli.quiet import keep_console_quiet

app = typer.Typer(
    name="edgeclf",
    help="From a folder of labelled images to deployable, measured edge classifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help text is literal: brackets such as edgeclf[openvino] are not Rich markup
)
# name: (module, the one line `edgeclf --help` shows; the module's HELP is `edgeclf NAME --help`)
COMMANDS = {
    "train": (train, "Train a classifier on a folder with one sub-folder per class."),
    "qat": (qat, "Quantization-aware fine-tuning of a trained run."),
    "export": (export, "Export to TFLite, ONNX and OpenVINO, each file validated."),
    "validate": (validate, "Validate the exported files again against the float model."),
    "evaluate": (evaluate, "Accuracy of the float model and every artifact on a split."),
    "predict": (predict, "Classify images with an artifact (no TensorFlow needed)."),
    "bench": (bench, "Latency, throughput and memory of every artifact on this machine."),
    "report": (report, "report.md and report.html: which file is best on each device."),
    "watch": (watch, "Classify each new image in a folder until stopped."),
    "serve": (serve, "Classify images POSTed over HTTP until stopped."),
    "verify": (verify, "Check that this device reproduces the export's outputs."),
    "unpack": (unpack, "Unpack and check a bundle from export --bundle."),
    "demo": (demo, "The whole chain on the embedded dataset, in a few minutes."),
    "sweep": (sweep, "Search models and settings for accuracy, latency and size."),
    "compare": (compare, "Compare runs and sweep trials; choose within a budget."),
    "explain": (explain, "Where the float model looks (Grad-CAM) for chosen images."),
    "doctor": (doctor, "Check versions, engines, CPU features and Keras; how to fix."),
}
for name, (module, summary) in COMMANDS.items():
    app.command(name, help=module.HELP, short_help=summary, epilog=module.EXAMPLE)(module.command)
app.add_typer(data.app, name="data", help=data.HELP, short_help="Prepare data: pack a folder into TFRecord shards.")


@app.callback()
def _options(
    verbose: bool = typer.Option(
        False,
        "--verbose",
        help="Also show the libraries' own messages and each stage's timings.",
    ),
) -> None:
    """From a folder of labelled images to deployable, measured edge classifiers."""
    verbose_stages[0] = verbose


def main() -> None:
    """`edgeclf`: the console is made quiet (edgeclf.cli.quiet) before any command imports TensorFlow;
    --verbose anywhere on the line leaves it as the libraries make it."""
    args = sys.argv[1:]
    verbose = "--verbose" in args
    if verbose:  # a global option, also accepted after the command's name
        sys.argv[1:] = ["--verbose", *(a for a in args if a != "--verbose")]
    keep_console_quiet(verbose)
    app()
