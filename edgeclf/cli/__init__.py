"""The `edgeclf` command line: one module per command, each a thin layer over one library call."""

import typer

from edgeclf.cli import (
    bench,
    compare,
    data,
    demo,
    evaluate,
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

app = typer.Typer(
    name="edgeclf",
    help="From a folder of labelled images to deployable, measured edge classifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help text is literal: brackets such as edgeclf[openvino] are not Rich markup
)
COMMANDS = {
    "train": train,
    "qat": qat,
    "export": export,
    "validate": validate,
    "evaluate": evaluate,
    "predict": predict,
    "bench": bench,
    "report": report,
    "watch": watch,
    "serve": serve,
    "verify": verify,
    "unpack": unpack,
    "demo": demo,
    "sweep": sweep,
    "compare": compare,
}
for name, module in COMMANDS.items():
    app.command(name, help=module.HELP, epilog=module.EXAMPLE)(module.command)
app.add_typer(data.app, name="data", help=data.HELP)


def main() -> None:
    app()
