"""What every command shares: the consoles, stage messages on the console, the translation of user
errors into one line, and options that override a configuration key (each declared once)."""

from __future__ import annotations

import errno
import functools
import inspect
import logging
import sys
import warnings
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from edgeclf.core.errors import EdgeclfError
from edgeclf.core.printable import printable

DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}  # a full or read-only disk: one line, not a traceback
# a path the user gave that the system refuses: one line naming it
PATH_ERRORS = {errno.ENAMETOOLONG, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR, errno.ELOOP}


class SafeConsole(Console):
    """A Console whose every string (text, markup, table cells) has its control and bidi characters
    written as escapes (edgeclf.core.printable) before Rich sees it: a file or class name cannot move
    the cursor, clear the screen or retitle the terminal. Newlines and tabs are kept here (output
    is multi-line by design); names are passed through printable() where they are printed."""

    def render_str(self, text: str, **kwargs) -> Text:
        return super().render_str(printable(text, keep="\n\t"), **kwargs)


# Tables keep their columns when the output is a file or a pipe (rich would assume 80 columns).
console = SafeConsole(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err_console = SafeConsole(stderr=True, highlight=False, soft_wrap=True)
_messages = [console]  # where stage messages go (stderr when stdout carries JSON)
verbose_stages = [False]  # edgeclf --verbose: the stages' timings and the libraries' own messages too


def messages_to_stderr() -> None:
    """Stage messages and warnings on stderr from now on (a command whose stdout is JSON lines)."""
    _messages[0] = err_console


class ConsoleHandler(logging.Handler):
    """Stage messages (the `edgeclf` loggers) as plain lines on the console; warnings in yellow."""

    def emit(self, record: logging.LogRecord) -> None:
        text = printable(record.getMessage())  # one line, whatever a name in it holds
        if record.levelno >= logging.WARNING:
            _messages[0].print(f"warning: {text}", style="yellow", markup=False)
        else:
            _messages[0].print(text, markup=False)


def show_stage_messages() -> None:
    """Send the stages' log messages (INFO and up) to the console, once per process. The command
    owns its process, so it also silences Pillow's warnings about odd files (EXIF, palettes: the
    file decodes or is an ImageError); the library leaves process-wide filters alone. Messages go
    to stdout again for each command (messages_to_stderr is one command's choice)."""
    warnings.filterwarnings("ignore", module=r"PIL\..*")
    _messages[0] = console
    logger = logging.getLogger("edgeclf")
    if not any(isinstance(h, ConsoleHandler) for h in logger.handlers):
        logger.addHandler(ConsoleHandler())
    logger.setLevel(logging.INFO)
    # the console is the command's only output: TensorFlow's absl installs a root handler on import,
    # which would print every message a second time
    logger.propagate = False


def user_errors(fn):
    """Show stage messages; print an EdgeclfError as `error: ...` on stderr and exit 2; Ctrl-C exits 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        show_stage_messages()
        try:
            return fn(*args, **kwargs)
        except EdgeclfError as exc:
            # the message is shown literally: file names and hints like 'edgeclf[openvino]' are not markup
            err_console.print(f"[bold red]error:[/] {escape(printable(exc))}", markup=True, soft_wrap=True)
            raise typer.Exit(2) from None
        except OSError as exc:
            if exc.errno in PATH_ERRORS and exc.filename:
                name = printable(exc.filename)
                name = name if len(name) <= 120 else name[:60] + "..." + name[-40:]
                err_console.print(f"[bold red]error:[/] {escape(name)}: {escape(exc.strerror or str(exc))}")
                raise typer.Exit(2) from None
            if exc.errno not in DISK_ERRORS:
                raise
            where = f" writing {exc.filename}" if exc.filename else ""
            err_console.print(
                f"[bold red]error:[/] {escape((exc.strerror or str(exc)) + where)}; free space (or make it writable) "
                "and run the command again: files are replaced only when complete, so what was there is intact",
                markup=True,
                soft_wrap=True,
            )
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None
        except typer.Exit:  # a command's own exit status (verify, doctor: 1), not a crash
            raise
        except Exception:  # a bug: the traceback follows, and what the native libraries said is kept
            from edgeclf.cli.quiet import keep_native_log

            keep_native_log()
            raise

    return wrapper


def setting(key: str, help: str, *decls: str, convert: Callable[[Any], Any] | None = None) -> Any:
    """An option that overrides the configuration key `key` (dotted, e.g. "data.image_size").
    Its default is None (not given: the configuration decides); `convert` turns what was typed
    into the configuration's type (e.g. "1,8" -> [1, 8])."""
    option = typer.Option(None, *decls, help=help)
    option.config_key = key
    option.convert = convert
    return option


def overrides(command: Callable, given: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """For the setting() options of command and the values it received (its locals()):
    ({config key: value or None}, {config key: the option as the user types it})."""
    values, names = {}, {}
    for name, param in inspect.signature(command).parameters.items():
        key = getattr(param.default, "config_key", None)
        if key is None:
            continue
        value = given[name]
        convert = param.default.convert
        values[key] = convert(value) if value is not None and convert else value
        names[key] = param.default.param_decls[0] if param.default.param_decls else "--" + name.replace("_", "-")
    return values, names


ENGINE_HELP = (
    "Engine for ONNX artifacts: auto (as artifacts.json says: ONNX Runtime, or OpenVINO for openvino-*), "
    "onnxruntime, or openvino (pip install 'edgeclf[openvino]'; fp32 files run pinned to f32)."
)


def done(message: str) -> None:
    """The last line of a command: "done" in green, then the message shown literally (it holds
    paths and names, which are never read as console markup)."""
    console.print(Text.assemble(("done", "bold green"), printable(message)), soft_wrap=True)


def integrity_option():
    """--no-integrity-check: run files whose size or sha256 differ from artifacts.json's record."""
    return typer.Option(
        True,
        "--integrity-check/--no-integrity-check",
        help="Refuse an artifact whose size or sha256 differs from what artifacts.json records (the default); "
        "--no-integrity-check runs a file you changed on purpose.",
    )


def comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def comma_ints(text: str) -> list[int] | str:
    """ "1,8" -> [1, 8]; anything else is passed on as typed, for the configuration to refuse by name."""
    try:
        return [int(part) for part in comma_list(text)]
    except ValueError:
        return text
