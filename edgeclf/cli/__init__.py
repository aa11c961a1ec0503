"""The `edgeclf` command line: one module per command, each a thin layer over one library call."""

import typer

from edgeclf.cli import bench, demo, evaluate, export, predict, qat, report, serve, train, validate, verify, watch

app = typer.Typer(
    name="edgeclf",
    help="From a folder of labelled images to deployable, measured edge classifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)
app.command("train", help=train.HELP, epilog=train.EXAMPLE)(train.command)
app.command("qat", help=qat.HELP, epilog=qat.EXAMPLE)(qat.command)
app.command("export", help=export.HELP, epilog=export.EXAMPLE)(export.command)
app.command("validate", help=validate.HELP, epilog=validate.EXAMPLE)(validate.command)
app.command("evaluate", help=evaluate.HELP, epilog=evaluate.EXAMPLE)(evaluate.command)
app.command("predict", help=predict.HELP, epilog=predict.EXAMPLE)(predict.command)
app.command("bench", help=bench.HELP, epilog=bench.EXAMPLE)(bench.command)
app.command("report", help=report.HELP, epilog=report.EXAMPLE)(report.command)
app.command("watch", help=watch.HELP, epilog=watch.EXAMPLE)(watch.command)
app.command("serve", help=serve.HELP, epilog=serve.EXAMPLE)(serve.command)
app.command("verify", help=verify.HELP, epilog=verify.EXAMPLE)(verify.command)
app.command("demo", help=demo.HELP, epilog=demo.EXAMPLE)(demo.command)


def main() -> None:
    app()
