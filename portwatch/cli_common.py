"""What every command does the same way: one-line errors, loading the configuration, the output file."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from typing import NoReturn, TextIO

import click

from .detect.signature import SignatureError
from .pipeline import Config, Setup
from .policy.config import PolicyError
from .sanitize import clean_text

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def fail(message: str) -> NoReturn:
    """Bad usage or unreadable input: one sanitised line on stderr, exit 2, never a traceback."""
    click.echo(f"portwatch: error: {clean_text(message, 500)}", err=True)
    sys.exit(EXIT_ERROR)


def load_setup(config: Config) -> Setup:
    try:
        return Setup.load(config)
    except (SignatureError, PolicyError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{exc.filename or ''}: {exc.strerror or exc}")


def open_output(stack: ExitStack, path: str | None) -> TextIO:
    """`path` opened for writing inside `stack`, or stdout when no path is given."""
    if not path:
        return sys.stdout
    try:
        return stack.enter_context(open(path, "w", encoding="utf-8", newline=""))
    except OSError as exc:
        fail(f"{path}: {exc.strerror or exc}")
