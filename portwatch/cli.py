"""Command line: `portwatch analyze`, `portwatch services`, `portwatch signatures`.

Exit status (docs/architecture.md): 0 when no finding reaches --fail-on, 1 when one does, 2 for any error
(bad usage, unreadable input, I/O, an internal error). Errors are one line on stderr, never a
traceback unless --debug asks for one (`cli_common.Main`).
"""

from __future__ import annotations

import sys
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

import click

from . import __version__
from .cli_common import (
    EXIT_ERROR,
    EXIT_FINDINGS,
    EXIT_OK,
    MAX_FLOWS_OPTION,
    Main,
    add_debug_options,
    internal_error_text,
    load_setup,
    open_output,
    os_error_text,
    set_debug,
)
from .cli_common import fail as _fail
from .inputs import NoCaptures, expand
from .model import SEVERITIES, CaptureStats, FlowRecord
from .pipeline import DEFAULT_MAX_FLOWS, MAX_WORKERS, Analyzer, CaptureError, Config, Setup, open_capture
from .progress import wanted as progress_wanted
from .report.recordfile import OutputError
from .report.sinks import FORMATS, SINKS, TABLE_FORMATS, Sink
from .report.summary import TOP_FINDINGS, Summary
from .sanitize import clean_text
from .services import HELP as SERVICES_HELP
from .services import load_services
from .signatures import SignatureError, check_files, load_signatures

if TYPE_CHECKING:
    from .report.servers import ServerInventory


@click.group(cls=Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="portwatch")
@click.option("--debug", is_flag=True, expose_value=False, is_eager=True, callback=set_debug,
              help="On an internal error, print the full traceback (every command takes --debug too).")
def main() -> None:
    """Recognise protocols from the bytes and report what runs on the wrong port."""


@main.command()
@click.argument("captures", nargs=-1)
@click.option("-r", "--read", "read_files", multiple=True, metavar="FILE",
              help="A capture to read, as tcpdump -r (repeatable; as well as or instead of CAPTURES).")
@click.option("-f", "--filter", "bpf_expr", metavar="EXPR",
              help="Capture filter (pcap-filter syntax, as tcpdump's): only matching packets are analysed.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="console", show_default=True,
              help="console: findings and summary; " + "; ".join(f"{f.name}: {f.help}" for f in SINKS.values())
              + ". --findings-only and --servers write console, jsonl or csv.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write records here, not stdout.")
@click.option("--services", "services_path", type=click.Path(), help=SERVICES_HELP)
@click.option("--signatures", "signature_dirs", multiple=True, type=click.Path(),
              help="Directory (or file) of signatures adding to or overriding the built-in set; repeatable.")
@click.option("--policy", "policy_path", type=click.Path(), help="Site policy file (TOML).")
@click.option("--fail-on", type=click.Choice(SEVERITIES), default="high", show_default=True,
              help="Exit 1 when a finding reaches this severity.")
@click.option("--max-flows", type=click.IntRange(min=16, max=MAX_FLOWS_OPTION), default=DEFAULT_MAX_FLOWS,
              show_default=True,
              help="Flows tracked at once; the oldest is evicted (and reported) beyond this.")
@click.option("-q", "--quiet", is_flag=True,
              help="Nothing on stderr but errors (no progress); the console report shows the findings only "
                   "(no totals, protocol table or capture counts).")
@click.option("--all", "show_all", is_flag=True,
              help=f"Console: show every finding, not the worst {TOP_FINDINGS} per server and kind.")
@click.option("--servers", "servers_table", is_flag=True,
              help="Write the servers inventory (one row per server endpoint) instead of flow records.")
@click.option("--findings-only", is_flag=True,
              help="Write the findings table (one row per server endpoint and kind) instead of flow records.")
@click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False),
              help="Baseline from `portwatch baseline save`: raise new-service for servers not in it.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Threads of the core for each capture (at most 64), its flows sharded by a symmetric flow "
                   "hash and the file read once. With --dask, N > 1 is the number of tasks to aim for (else one "
                   "per thread of the cluster).")
@click.option("--dask", "dask_address", metavar="ADDRESS",
              help="Distribute captures (and shards of large ones) over the Dask cluster at this scheduler address.")
def analyze(
    captures: tuple[str, ...],
    read_files: tuple[str, ...],
    bpf_expr: str | None,
    fmt: str,
    output: str | None,
    services_path: str | None,
    signature_dirs: tuple[str, ...],
    policy_path: str | None,
    fail_on: str,
    max_flows: int,
    quiet: bool,
    show_all: bool,
    servers_table: bool,
    findings_only: bool,
    baseline_path: str | None,
    workers: int,
    dask_address: str | None,
) -> None:
    """Analyze pcap/pcapng CAPTURES (a directory: every capture in it; '-' reads standard input)."""
    if servers_table and findings_only:
        _fail("--servers and --findings-only each replace the output; give one")
    if (servers_table or findings_only) and fmt not in TABLE_FORMATS:
        _fail(f"--{'servers' if servers_table else 'findings-only'} writes {', '.join(TABLE_FORMATS)}, not {fmt}")
    if fmt in SINKS and SINKS[fmt].needs_path and not (servers_table or findings_only) and not output:
        _fail(f"--format {fmt} writes a file: give it with -o FILE")
    if not captures and not read_files:
        _fail("no capture given (CAPTURES or -r FILE)")
    if workers > MAX_WORKERS and not dask_address:  # with --dask, N is tasks, not threads
        _fail(f"--workers: at most {MAX_WORKERS} threads, not {workers}")
    try:
        paths = expand((*read_files, *captures))
    except NoCaptures as exc:
        _fail(str(exc))
    config = Config(signature_dirs=signature_dirs, services_path=services_path, policy_path=policy_path,
                    max_flows=max_flows, bpf=bpf_expr)
    setup = load_setup(config)
    if baseline_path:
        from .baseline import BaselineError, load_baseline

        try:
            setup.ctx.baseline = load_baseline(baseline_path)
        except BaselineError as exc:
            _fail(str(exc))
    summary = Summary()
    inventory: ServerInventory | None = None
    if servers_table:
        from .report.servers import ServerInventory

        inventory = ServerInventory()
    errors: list[str] = []
    view = _View(fmt, servers_table, findings_only, quiet, None if show_all else TOP_FINDINGS)
    try:
        _analyze(tuple(paths), output, config, setup, summary, inventory, errors, view, workers, dask_address)
    except OutputError as exc:  # a full disk: what was written ends at a record boundary
        errors.append(os_error_text(exc))
    for e in errors:
        click.echo(f"portwatch: error: {clean_text(e, 500)}", err=True)
    if errors:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_FINDINGS if summary.reaches(fail_on) else EXIT_OK)


@dataclass(frozen=True, slots=True)
class _View:
    """What `analyze` writes: the format, which table (if any), and the console's options."""

    fmt: str
    servers_table: bool
    findings_only: bool
    quiet: bool
    top: int | None

    @property
    def tables(self) -> bool:
        return self.servers_table or self.findings_only


def _open_sink(stack: ExitStack, view: _View, output: str | None) -> Sink | None:
    if view.tables or view.fmt not in SINKS:
        return None
    fmt = SINKS[view.fmt]
    if fmt.open_path is not None:
        from .report.sqlite import SchemaError

        assert output is not None  # checked in analyze()
        try:
            return fmt.open_path(output)
        except (OSError, SchemaError) as exc:
            _fail(f"{output}: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}")
    assert fmt.open_stream is not None
    return fmt.open_stream(open_output(stack, output, records=True))


def _analyze(captures: tuple[str, ...], output: str | None, config: Config, setup: Setup, summary: Summary,
             inventory: ServerInventory | None, errors: list[str], view_opts: _View, workers: int,
             dask_address: str | None) -> None:
    fmt, quiet = view_opts.fmt, view_opts.quiet
    with ExitStack() as stack:
        writer = _open_sink(stack, view_opts, output)
        # The console report and the tables go to stdout (or -o) once something was read.
        out: TextIO | None = None if writer is not None else open_output(stack, output, records=fmt != "console")

        # A record format writes no closing report: the summary decides the exit status alone.
        add_to_summary = summary.add if writer is None else summary.add_worst

        def sink(rec: FlowRecord) -> None:
            try:
                add_to_summary(rec)
                if inventory is not None:
                    inventory.add(rec)
            except Exception as exc:  # a bug in the report: said once, and the record is still written
                if not sink_failed:
                    sink_failed.append(internal_error_text(exc, rec.pcap or "a flow"))
            if writer is not None:
                writer.write(rec)

        sink_failed: list[str] = []
        # Records no finding came of, as the core wrote their lines (a record format) or counted
        # them (the closing report alone): nothing else in this run reads them (the summary only
        # a record's findings or counts, no inventory is kept).
        line_format = SINKS[fmt].quiet_lines if writer is not None and inventory is None else None
        # A format with quiet lines is one whose sink has write_lines (report/sinks.py).
        on_line = writer.write_lines if line_format else None  # type: ignore[union-attr]
        on_tally = summary.add_tally if writer is None and inventory is None else None

        stats_all = []
        names = []
        read_any = False  # a capture was opened and read (even if it ended early): a report is due
        show_progress = progress_wanted(quiet)
        spread = bool(dask_address)
        if spread:
            # Imported here: the Dask machinery costs a local run nothing.
            from .parallel import ParallelError
            from .parallel import run as run_parallel

            try:
                for res in run_parallel(captures, setup, config, sink, workers, dask_address, show_progress):
                    names.append(res.name)
                    stats_all.append(res.stats)
                    errors.extend(res.errors)
                    read_any = read_any or bool(res.stats.packets)
            except ParallelError as exc:
                _fail(str(exc))
            except KeyboardInterrupt:
                errors.append("interrupted")
        view = None
        if show_progress and not spread:
            from .progress import ProgressView  # rich: only for a terminal

            view = stack.enter_context(ProgressView())
        for path in () if spread else captures:
            try:
                capture = open_capture(path)
            except CaptureError as exc:
                errors.append(str(exc))
                continue
            names.append(capture.name)
            # --workers N: N threads in the core track shards of the flows; the file is read once.
            analyzer = Analyzer(config, on_record=sink, setup=setup, pcap_name=None if path == "-" else capture.name,
                                workers=workers, meta_json=writer is not None and SINKS[fmt].meta_json,
                                on_line=on_line, line_format=line_format or "jsonl", on_tally=on_tally)
            try:
                analyzer.run_capture(capture, view.track(str(len(names)), capture, analyzer) if view else None)
            except KeyboardInterrupt:
                errors.append(f"{capture.name}: interrupted")
                analyzer.close()
                break
            except OSError:  # the output failed (a full disk): nothing more can be written
                raise
            except Exception as exc:  # a bug: reported in one line, and every flow read so far is written
                errors.append(internal_error_text(exc, capture.name))
                with suppress(Exception):  # the flows still open; a second failure adds nothing to report
                    analyzer.close()
                continue
            try:
                stats = analyzer.close()
            except OSError:  # the output failed (a full disk): nothing more can be written
                raise
            except Exception as exc:
                errors.append(internal_error_text(exc, capture.name))
                continue
            stats_all.append(stats)
            if stats.error:
                errors.append(stats.error)
            elif stats.packets and stats.unsupported_link == stats.packets:
                errors.append(f"{capture.name}: unsupported link type, no packet could be decoded")
            # A capture that failed before its first packet (empty, not a capture) was not read.
            read_any = read_any or bool(stats.packets) or not stats.error
        errors.extend(sink_failed)
        if view is not None:
            view.close()  # before the report: a live display would redraw over it on a shared terminal
        if writer is not None:
            writer.close()
            # SQLite keeps rows while the database cannot take them, within a bound: what it
            # could not keep or write in the end is an error, not a quieter output.
            lost = getattr(writer, "lost", 0)
            if lost:
                why = getattr(writer, "failure", None) or "more rows waited than are held"
                errors.append(f"{output}: {lost} rows not written: {why}")
        if out is None or not read_any:
            return  # nothing read: nothing that looks like a (clean) report
        # The writers of the closing reports (and rich) are imported only when one is written.
        if inventory is not None:
            from .report.servers import write_servers

            write_servers(inventory, fmt, out)
        elif view_opts.findings_only:
            from .report.findings import write_findings

            note = summary.unlisted_note()
            write_findings(summary.sorted_groups(), fmt, out, summary.counts(), note)
            if note is not None and fmt != "console":
                click.echo(f"portwatch: note: {note}", err=True)
        elif fmt == "console":
            from rich.console import Console

            from .report.console import render

            console = Console(file=out, highlight=False, soft_wrap=False)
            render(console, summary, _total(stats_all), names, top=view_opts.top, quiet=quiet)


def _total(all_stats: list[CaptureStats]) -> CaptureStats:
    total = CaptureStats()
    for s in all_stats:
        total.add(s)
    return total


@main.command()
@click.argument("query")
@click.option("--services", "services_path", type=click.Path(), help=SERVICES_HELP)
@click.option("--transport", type=click.Choice(["tcp", "udp"]), help="Only this transport.")
def services(query: str, services_path: str | None, transport: str | None) -> None:
    """Show what /etc/services (or --services: a file, iana) says about a PORT or a service NAME, and which
    protocol it means."""
    try:
        db = load_services(services_path)
        setup_sigs = load_signatures()
    except OSError as exc:
        _fail(f"{exc.filename or services_path}: {exc.strerror or exc}")
    except SignatureError as exc:
        _fail(str(exc))
    meaning: dict[tuple[str, str], set[str]] = {}
    for sig in setup_sigs:
        for n in sig.services:
            for t in sig.transports:
                meaning.setdefault((n.lower(), t), set()).add(sig.protocol)
    if query.isdigit():
        port = int(query)
        if not 0 <= port <= 65535:
            raise click.BadParameter(f"{clean_text(query, 64)}: a port is 0..65535", param_hint="QUERY")
        entries = [e for t in ("tcp", "udp") if transport in (None, t) for e in db.by_port(port, t)]
    else:
        entries = db.by_name(query, transport)
    if not entries:
        click.echo(f"{clean_text(query, 64)}: not in {clean_text(db.source, 500)}")
        sys.exit(EXIT_FINDINGS)
    for e in entries:
        protos = set()
        for n in (e.name, *e.aliases):
            protos |= meaning.get((n.lower(), e.transport), set())
        # Names, aliases and the file name come from a file someone else may have written
        # (audit --root reads an image's): escaped like packet text before they reach a terminal.
        aliases = f" (aliases: {', '.join(clean_text(a, 64) for a in e.aliases)})" if e.aliases else ""
        means = f" -> {', '.join(sorted(protos))}" if protos else ""
        click.echo(f"{e.port}/{e.transport}\t{clean_text(e.name, 64)}{aliases}{means}\t"
                   f"[{clean_text(db.source, 500)}:{e.line}]")


@main.group()
def signatures() -> None:
    """Inspect and validate signature files."""


@signatures.command("list")
@click.option("--signatures", "signature_dirs", multiple=True, type=click.Path(), help="Extra signature directory.")
def signatures_list(signature_dirs: tuple[str, ...]) -> None:
    """List the signature set, with where each protocol's file came from."""
    try:
        sigs = load_signatures(signature_dirs)
    except SignatureError as exc:
        _fail(str(exc))
    for s in sigs:
        click.echo(f"{s.protocol:<14} {'/'.join(s.transports):<8} {s.origin:<8} {s.source}")


@signatures.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path())
def signatures_check(files: tuple[str, ...]) -> None:
    """Validate signature FILES; every problem names file, line and field (warnings too)."""
    import tomllib
    from pathlib import Path

    bad = 0
    for f in files:
        problems = check_files([f])
        errors = [p for p in problems if ": warning: " not in p]
        for p in problems:
            click.echo(clean_text(p, 500), err=True)
        if errors:
            bad += 1
            continue
        doc = tomllib.loads(Path(f).read_text(encoding="utf-8"))  # valid: the core just read it
        n = len(doc.get("match", ()))
        click.echo(f"{clean_text(f, 500)}: ok ({clean_text(str(doc.get('protocol')), 64)}, {n} match(es))")
    sys.exit(EXIT_ERROR if bad else EXIT_OK)


# Imported when invoked (or listed by --help): `analyze` pays nothing for the monitor's, the
# audit's or the baseline's modules.
main.add_lazy_command("monitor", "portwatch.monitor.command:monitor")
main.add_lazy_command("audit", "portwatch.audit.command:audit")
main.add_lazy_command("baseline", "portwatch.baseline_command:baseline")
add_debug_options(main)  # every command registered above takes --debug (lazy ones when loaded)

if __name__ == "__main__":  # pragma: no cover
    main()
