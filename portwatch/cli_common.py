"""What every command does the same way: one-line errors, loading the configuration, the output file.

Errors (DESIGN.md exit status): bad usage, bad input, an I/O error and an internal error (a bug)
all exit 2 with one line on stderr; exit 1 only means a finding reached --fail-on. An internal
error's line says to run again with `--debug` (or PORTWATCH_DEBUG=1), which prints the traceback
as well. `Main`, the top-level group, applies this to every command.
"""

from __future__ import annotations

import errno
import gc
import importlib
import os
import sys
from contextlib import ExitStack
from typing import Any, NoReturn, TextIO

import click

from .bpf import BpfError
from .pipeline import Config, Setup
from .policy.config import PolicyError
from .report.recordfile import OutputError, RecordFile, StdoutRecords
from .report.safeopen import create_output
from .sanitize import clean_text
from .signatures import SignatureError
from .tomlguard import check_signature_dirs

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


DEBUG_ENV = "PORTWATCH_DEBUG"
_debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")


def set_debug(ctx: click.Context | None = None, param: click.Parameter | None = None, value: bool = True) -> None:
    """Callback of every command's --debug flag (and the group's): show tracebacks of internal errors."""
    global _debug
    if value:
        _debug = True


def debug_option() -> click.Option:
    return click.Option(["--debug"], is_flag=True, expose_value=False, is_eager=True, callback=set_debug,
                        help=f"On an internal error, print the full traceback (also {DEBUG_ENV}=1).")


# `--max-flows` at most: more flows than any machine holds (~0.7 KB of state each). A bound on the
# option, not on the table: past 64 bits the core's conversion failed as an internal error.
MAX_FLOWS_OPTION = 1_000_000_000


class Seconds(click.FloatRange):
    """A duration option: a FloatRange that also refuses NaN, which compares false with every bound
    and so passes FloatRange's checks (`--idle-tcp nan` ended no flow ever)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if seconds != seconds:
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return seconds


def fail(message: str) -> NoReturn:
    """Bad usage or unreadable input: one sanitised line on stderr, exit 2, never a traceback."""
    click.echo(f"portwatch: error: {clean_text(message, 500)}", err=True)
    sys.exit(EXIT_ERROR)


def os_error_text(exc: OSError) -> str:
    """`file: reason` for an OSError, as every command reports one."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{exc.filename}: {reason}" if exc.filename else reason


def internal_error_text(exc: BaseException, where: str = "") -> str:
    """One line for an unexpected exception (a bug, or a resource exhausted); with --debug, the
    traceback goes to stderr first."""
    if _debug:
        import traceback  # only for --debug, on an error

        traceback.print_exception(exc, file=sys.stderr)
    detail = clean_text(f"{type(exc).__name__}: {exc}", 200)
    hint = "traceback above" if _debug else f"run again with --debug (or {DEBUG_ENV}=1) for the full traceback"
    return f"internal error{f' in {where}' if where else ''}: {detail} ({hint})"


def _stdout_to_devnull() -> None:
    """After stdout failed, point its descriptor at /dev/null so the interpreter's final flush of
    what is still buffered does not print a second report ("Exception ignored ...")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except (OSError, ValueError) as exc:
        _stdout_to_devnull()
        fail(f"<stdout>: write error: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}")


_WRITE_ERRNOS = frozenset((errno.ENOSPC, errno.EPIPE, errno.EIO, errno.EFBIG, errno.EDQUOT))


class Main(click.Group):
    """The `portwatch` group: whatever a command raises ends as one line on stderr and exit 2.

    Commands added with `add_lazy_command` are imported the first time they are looked up (invoked,
    or listed by --help), so a run of one command imports nothing of the others."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: dict[str, str] = {}  # name -> "module:attribute"

    def add_lazy_command(self, name: str, target: str) -> None:
        self.lazy_commands[name] = target

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = self.lazy_commands.pop(name, None)
        if target is not None:
            module, _, attr = target.partition(":")
            cmd = getattr(importlib.import_module(module), attr)
            _add_debug_option(cmd)
            self.add_command(cmd, name)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        if not gc.isenabled():
            # The entry point (`portwatch.launch`) loaded the command line with the collector
            # off: what it loaded stays out of the collector's sight, as `quiet_collector` keeps it.
            gc.freeze()
            gc.enable()
        try:
            try:
                return super().invoke(ctx)
            finally:
                _flush_stdout()  # output that fails to reach stdout (a full disk) is an error too
        except (click.exceptions.ClickException, click.exceptions.Exit, SystemExit):
            raise
        except (KeyboardInterrupt, click.exceptions.Abort):
            fail("interrupted")
        except OutputError as exc:
            fail(os_error_text(exc))
        except OSError as exc:
            if _debug:
                import traceback  # only for --debug, on an error

                traceback.print_exception(exc, file=sys.stderr)
            if exc.filename is None and exc.errno in _WRITE_ERRNOS:  # stdout (click.echo, rich) failed
                _stdout_to_devnull()
                fail(f"<stdout>: write error: {exc.strerror or exc}")
            fail(os_error_text(exc))
        except Exception as exc:  # a bug, or a resource exhausted: one line, and where the traceback is
            fail(internal_error_text(exc))


def add_debug_options(group: click.Group) -> None:
    """Give every command under `group` a --debug flag (the group has its own; `Main` gives it to
    its lazy commands when it loads them)."""
    for cmd in group.commands.values():
        _add_debug_option(cmd)


def _add_debug_option(cmd: click.Command) -> None:
    if isinstance(cmd, click.Group):
        add_debug_options(cmd)
    elif not any(p.name == "debug" for p in cmd.params):
        cmd.params.append(debug_option())


def load_setup(config: Config) -> Setup:
    try:
        check_signature_dirs(config.signature_dirs)
        setup = Setup.load(config)
    except (SignatureError, PolicyError, BpfError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{exc.filename or ''}: {exc.strerror or exc}")
    quiet_collector()
    return setup


# Young collections every this many net allocations instead of CPython's 700: more than the
# records of a batch the core hands over hold (each a few dicts and lists), so that a young
# collection seldom walks a batch that reference counting frees a moment later anyway.
YOUNG_COLLECTION_EVERY = 100_000


def quiet_collector() -> None:
    """Tune the cyclic garbage collector for a long analysis, once everything is loaded.

    The flows live in the core; Python holds only the records of the batch at hand, and those are
    freed by reference counting, not by the collector (it finds nothing here: 0 objects on
    mix-2m). Yet each young collection walked the batch's records in flight (~20,000 containers,
    ~25 ms each at 20,000). What was loaded is frozen out of the collector's sight and young
    collections run rarely: mix-2m none at all (it had 3 at 20,000: ~80 ms CPU), the same peak
    memory; the threshold still bounds what a cycle could pile up. The library API (notebooks)
    leaves the process's collector alone.
    """
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, 20, 20)


def open_output(stack: ExitStack, path: str | None, records: bool = False) -> TextIO:
    """`path` opened for writing inside `stack` (never through a symbolic link: `create_output`), or
    stdout when no path is given. With `records` (jsonl, csv: one write() per record) a `RecordFile`,
    which a full disk leaves at a record boundary, or stdout's bytes (`StdoutRecords`) unless it is
    a terminal."""
    if not path:
        if records and not sys.stdout.isatty() and hasattr(sys.stdout, "buffer"):
            return StdoutRecords(sys.stdout)  # type: ignore[return-value]
        return sys.stdout
    try:
        if records:
            return stack.enter_context(RecordFile(path))  # type: ignore[return-value]
        return stack.enter_context(open(create_output(path), "w", encoding="utf-8", newline=""))
    except OSError as exc:
        fail(f"{path}: {exc.strerror or exc}")
