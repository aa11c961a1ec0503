"""What every command shares: the consoles and the translation of user errors into one line."""

from __future__ import annotations

import functools
import sys

import typer
from rich.console import Console

from edgeclf.errors import EdgeclfError

# Tables keep their columns when the output is a file or a pipe (rich would assume 80 columns).
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def user_errors(fn):
    """Print an EdgeclfError as `error: ...` on stderr and exit 2; Ctrl-C exits 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EdgeclfError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", markup=True, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper
