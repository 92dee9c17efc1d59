"""`portwatch baseline save CAPTURE... -o baseline.json`: record the servers a network offers.

Registered on the `main` group at the end of cli.py. Errors are one line on stderr, exit 2.
"""

from __future__ import annotations

import sys

import click

from .baseline import save_baseline, scan
from .cli_common import fail as _fail
from .cli_common import load_setup
from .pipeline import Config
from .sanitize import clean_text
from .services import HELP as SERVICES_HELP


@click.group()
def baseline() -> None:
    """Record the known servers, to compare later captures against (analyze --baseline)."""


@baseline.command("save")
@click.argument("captures", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True),
              help="Baseline file to write (JSON).")
@click.option("--services", "services_path", type=click.Path(), help=SERVICES_HELP)
@click.option("--signatures", "signature_dirs", multiple=True, type=click.Path(),
              help="Extra signature directory or file; repeatable.")
def baseline_save(captures: tuple[str, ...], output: str, services_path: str | None,
                  signature_dirs: tuple[str, ...]) -> None:
    """Record every server endpoint and protocol seen in CAPTURES into a baseline file."""
    config = Config(signature_dirs=signature_dirs, services_path=services_path)
    setup = load_setup(config)
    inv, errors = scan(captures, config, setup)
    for e in errors:
        click.echo(f"portwatch: error: {clean_text(e, 500)}", err=True)
    if errors:
        sys.exit(2)
    try:
        save_baseline(inv, [c for c in captures], output)
    except OSError as exc:
        _fail(f"{output}: {exc.strerror or exc}")
    click.echo(f"{output}: {len(inv.servers)} server endpoints from {len(captures)} capture(s)", err=True)
