"""`portwatch audit`: what this host (or a mounted image) offers, as whom, on which port.

Exit status as `analyze`: 0 when no finding reaches --fail-on, 1 when one does, 2 for bad usage
or an unreadable root. Configuration lines that cannot be parsed are reported (file:line) on
stderr and in the console view, and never stop the audit.
"""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TextIO

import click
from rich.console import Console

from ..cli_common import EXIT_FINDINGS, EXIT_OK, Seconds, load_setup, open_output
from ..cli_common import fail as _fail
from ..model import SEVERITIES
from ..pipeline import Config
from ..report.csvout import CsvWriter
from ..report.jsonl import JsonlWriter
from ..report.summary import Summary
from ..sanitize import clean_text
from ..services import IANA
from .console import render_audit
from .host import gather, in_root
from .prober import ProbeLimits, probe_listeners
from .rules import audit_records


@click.command()
@click.option("--root", "root", type=click.Path(file_okay=False), default=None,
              help="Audit the image mounted at DIR (reads DIR/etc/...; no sockets, no probing).")
@click.option("--probe", is_flag=True, help="Connect to each local TCP listener on loopback and classify it.")
@click.option("--probe-timeout", type=Seconds(min=0.1, max=30), default=2.0, show_default=True,
              help="Seconds for each connect and each reply; a server silent for half of it is client-first.")
@click.option("--format", "fmt", type=click.Choice(["console", "jsonl", "csv"]), default="console",
              show_default=True, help="console: findings and inventory; jsonl/csv: one record per service/listener.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write records here, not stdout.")
@click.option("--services", "services_path", type=click.Path(),
              help=f"services(5) file, or '{IANA}' for IANA's full port registry shipped with portwatch "
              "[default: ROOT/etc/services, else /etc/services].")
@click.option("--signatures", "signature_dirs", multiple=True, type=click.Path(),
              help="Directory (or file) of signatures adding to or overriding the built-in set; repeatable.")
@click.option("--policy", "policy_path", type=click.Path(), help="Site policy file (TOML).")
@click.option("--fail-on", type=click.Choice(SEVERITIES), default="high", show_default=True,
              help="Exit 1 when a finding reaches this severity.")
def audit(root: str | None, probe: bool, probe_timeout: float, fmt: str, output: str | None,
          services_path: str | None, signature_dirs: tuple[str, ...], policy_path: str | None, fail_on: str) -> None:
    """Audit inetd.conf, xinetd.conf/xinetd.d and listening sockets against /etc/services."""
    root_dir = Path(root) if root else Path("/")
    if root and not root_dir.is_dir():
        _fail(f"{root}: not a directory")
    if root and probe:
        _fail("--probe audits the running host; it cannot be combined with --root")
    if services_path is None and root:
        try:
            image_services = in_root(root_dir, "/etc/services")
        except OSError:
            image_services = None
        if image_services is not None and image_services.is_file():
            services_path = str(image_services)
    config = Config(signature_dirs=signature_dirs, services_path=services_path, policy_path=policy_path)
    setup = load_setup(config)
    facts = gather(root_dir, with_sockets=root is None)
    probes = None
    if probe:
        limits = ProbeLimits(connect_timeout=probe_timeout, banner_wait=probe_timeout / 2, read_timeout=probe_timeout)
        probes = probe_listeners(setup.engine, facts.listeners, setup.ctx.expected_protocols, limits)
    records = audit_records(facts, setup.ctx, time.time(), probes)
    summary = Summary()
    for rec in records:
        summary.add(rec)
    facts.errors.sort(key=lambda e: (e.file, e.line))
    for err in facts.errors:
        click.echo(f"portwatch: warning: {clean_text(str(err), 500)}", err=True)
    with ExitStack() as stack:
        out: TextIO = open_output(stack, output, records=fmt != "console")
        if fmt == "console":
            render_audit(Console(file=out, highlight=False, soft_wrap=False), records, facts.errors,
                         facts.sources)
        else:
            writer = JsonlWriter(out) if fmt == "jsonl" else CsvWriter(out)
            for rec in records:
                writer.write(rec)
            writer.close()
    sys.exit(EXIT_FINDINGS if summary.reaches(fail_on) else EXIT_OK)
