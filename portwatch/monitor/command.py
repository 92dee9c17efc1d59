"""`portwatch monitor`: watch interfaces (or replay a capture) and report findings as they happen.

Start-up order matters for least privilege: load the configuration, open the capture sockets,
create the output files (never through a symbolic link, see report/safeopen.py), then drop root
(`--user`, by default `portwatch` or `nobody`), and only then parse the first packet.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import ExitStack
from typing import NoReturn

import click
from rich.console import Console

from .. import _core
from ..cli_common import MAX_FLOWS_OPTION, Seconds, quiet_collector
from ..pipeline import CaptureError, Config, open_capture
from ..report.safeopen import OutputPathError, open_output
from ..report.sqlite import SchemaError, SqliteWriter
from ..sanitize import clean_text
from ..services import HELP as SERVICES_HELP
from . import privdrop
from . import reload as reloading
from .analyzer import MonitorAnalyzer
from .bpf import BpfError
from .emit import Emitter, JsonlSink
from .live import LiveCapture, LiveError
from .loop import Limits, Monitor
from .view import LogView, RichView, Snapshot

EXIT_OK, EXIT_ERROR = 0, 2
log = logging.getLogger("portwatch.monitor")
_DEFAULTS = Config()  # a slots dataclass: its class attributes are descriptors, not the defaults


def _fail(message: str) -> NoReturn:
    click.echo(f"portwatch: error: {clean_text(message, 500)}", err=True)
    sys.exit(EXIT_ERROR)


def _open_jsonl(path: str, owner: tuple[int, int] | None) -> JsonlSink:
    try:
        # One os.write per line, O_APPEND: a reader never sees half a line.
        opened = open_output(path, regular_only=False, owner=owner)
    except OSError as exc:
        _fail(str(exc) if isinstance(exc, OutputPathError) else f"{path}: {exc.strerror or exc}")
    return JsonlSink(opened.fd, path)


@click.command()
@click.option("-i", "--interface", "interfaces", multiple=True, metavar="IFACE",
              help="Capture on this interface (AF_PACKET); repeatable.")
@click.option("-r", "--read", "replay", type=click.Path(dir_okay=False), metavar="FILE",
              help="Replay a pcap/pcapng file through the monitor path instead of capturing.")
@click.option("--bpf", "bpf_expr", metavar="EXPR",
              help="Capture filter (pcap-filter syntax): in the kernel for -i, in the core for -r.")
@click.option("--no-promisc", is_flag=True, help="Do not put the interfaces in promiscuous mode.")
@click.option("--buffer-mb", type=click.IntRange(min=1, max=2048), default=64, show_default=True,
              help="Memory-mapped ring per capture thread: how long a burst can outrun the analysis.")
@click.option("--workers", type=click.IntRange(min=1, max=_core.MAX_WORKERS), default=1, show_default=True,
              help="Capture and analysis threads per interface (PACKET_FANOUT hash: a flow stays on one).")
@click.option("--jsonl", "jsonl_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Append one JSON line per event (classified, finding, flow, reload), flushed per line.")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="SQLite database (WAL) with tables flows and findings; created if missing.")
@click.option("--duration", type=Seconds(min=0), metavar="SECONDS", help="Stop after this long.")
@click.option("--max-packets", type=click.IntRange(min=1), metavar="N", help="Stop after N packets.")
@click.option("--user", metavar="NAME",
              help="Drop root for this account once the sockets and files are open [default as root: "
                   "portwatch if that account exists, else nobody]; 'root' keeps root, with a warning.")
@click.option("--services", "services_path", type=click.Path(), help=SERVICES_HELP)
@click.option("--signatures", "signature_dirs", multiple=True, type=click.Path(),
              help="Directory (or file) of signatures adding to or overriding the built-in set; repeatable.")
@click.option("--policy", "policy_path", type=click.Path(), help="Site policy file (TOML); reread on SIGHUP.")
@click.option("--max-flows", type=click.IntRange(min=16, max=MAX_FLOWS_OPTION), default=_DEFAULTS.max_flows,
              show_default=True,
              help="Flows tracked at once; the oldest is evicted (and reported) beyond this.")
@click.option("--idle-tcp", type=Seconds(min=1), default=_DEFAULTS.idle_tcp, show_default=True,
              help="Seconds of silence that end a TCP flow.")
@click.option("--idle-udp", type=Seconds(min=1), default=_DEFAULTS.idle_udp, show_default=True,
              help="Seconds of silence that end a UDP flow.")
@click.option("--active-timeout", type=Seconds(min=1), default=1800.0, show_default=True,
              help="Report a flow older than this as a segment; it goes on under the same flow_id.")
@click.option("--stats-interval", type=Seconds(min=0), default=60.0, show_default=True,
              help="Without a terminal: log a status line this often (0: never).")
@click.option("--view/--no-view", default=None, help="Rich live view [default: when stdout is a terminal].")
def monitor(
    interfaces: tuple[str, ...], replay: str | None, bpf_expr: str | None, no_promisc: bool, buffer_mb: int,
    workers: int,
    jsonl_path: str | None, db_path: str | None, duration: float | None, max_packets: int | None,
    user: str | None, services_path: str | None, signature_dirs: tuple[str, ...], policy_path: str | None,
    max_flows: int, idle_tcp: float, idle_udp: float, active_timeout: float, stats_interval: float,
    view: bool | None,
) -> None:
    """Watch IFACEs (a SPAN/mirror port) and report findings the moment a flow is classified.

    SIGINT/SIGTERM: report every open flow, flush the outputs, exit 0. SIGHUP: reload signatures,
    services and policy, keeping the flow table; a bad file keeps the old configuration.
    """
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s portwatch: %(message)s")
    if bool(interfaces) == bool(replay):
        _fail("give either -i IFACE (repeatable) or -r FILE")
    if replay and no_promisc:
        _fail("--no-promisc applies to live capture (-i), not to -r")
    euid = os.geteuid()
    try:
        account = privdrop.lookup(user) if user else None
    except privdrop.PrivilegeError as exc:
        _fail(str(exc))
    if euid == 0 and account is None:
        try:
            account = privdrop.default_account()
        except privdrop.PrivilegeError as exc:
            _fail(str(exc))
    if account is not None and account.uid == 0:
        log.warning("--user root: packet parsers run as root; any parser bug is a root compromise")
    # Output files portwatch creates are handed to the account (fchown on the open descriptor).
    owner = (account.uid, account.gid) if euid == 0 and account is not None and account.uid != 0 else None

    config = Config(signature_dirs=signature_dirs, services_path=services_path, policy_path=policy_path,
                    max_flows=max_flows, idle_tcp=idle_tcp, idle_udp=idle_udp,
                    # A file's frames are filtered in the core; a live socket's in the kernel.
                    bpf=bpf_expr if replay else None)
    setup, error = reloading.load(config)
    if setup is None:
        _fail(error)
    quiet_collector()

    with ExitStack() as stack:
        source: LiveCapture | _core.Capture
        try:
            if replay:
                source = open_capture(replay)
            else:
                source = LiveCapture(list(interfaces), setup, config, bpf_expr, promisc=not no_promisc,
                                     workers=workers, ring_mb=buffer_mb, active_timeout=active_timeout)
                stack.callback(source.close)
        except (CaptureError, LiveError, BpfError) as exc:
            _fail(str(exc))
        jsonl = _open_jsonl(jsonl_path, owner) if jsonl_path else None
        if jsonl is not None:
            stack.callback(jsonl.close)
        db = None
        if db_path:
            try:
                db = SqliteWriter(db_path, safe=True, owner=owner)
            except (SchemaError, OutputPathError) as exc:
                _fail(str(exc))
            stack.callback(db.close)
        # From here on the only root-held resources needed are open: give them up.
        if account is not None:
            try:
                privdrop.preload_modules()
                privdrop.drop(account)
            except (privdrop.PrivilegeError, OSError) as exc:
                _fail(str(exc))
            if account.uid != 0:
                log.info("running as %s (uid %d, gid %d)", account.name, account.uid, account.gid)

        use_view = sys.stdout.isatty() if view is None else view
        name = os.path.basename(replay) if replay else ",".join(interfaces)
        sink = RichView(Console(), name) if use_view else LogView(stats_interval)
        stack.callback(sink.close)
        emitter = Emitter(jsonl, db, sink)
        stack.callback(emitter.close)
        analyzer = MonitorAnalyzer(
            config, on_record=emitter.on_record, on_classified=emitter.on_classified, setup=setup,
            pcap_name=os.path.basename(replay) if replay else None, run_id=f"{int(time.time()):x}-{os.getpid()}-",
        )
        mon = Monitor(analyzer, source, emitter, config,
                      Limits(duration=duration, max_packets=max_packets, active_timeout=active_timeout), sink)
        log.info("monitoring %s%s", name, f" (filter: {bpf_expr})" if bpf_expr else "")
        snap = mon.run()
        emitter.close()  # the last (bounded) write attempts, before the summary counts the losses
        sink.stop(snap, emitter.tally)  # the view's last frame stays; the summary goes below it
        _summary(snap, emitter, mon.stop_reason)
        if not isinstance(source, LiveCapture) and source.error:
            log.error("%s", clean_text(source.error, 500))
    # Anything reported but not written (a full disk, a database locked past the retries) is a failure.
    sys.exit(EXIT_ERROR if emitter.lost else EXIT_OK)


def _summary(snap: Snapshot, emitter: Emitter, reason: str) -> None:
    t = emitter.tally
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(t.by_kind.items())) or "none"
    log.info("stopped (%s) after %.1fs: %s", reason or "done", snap.uptime, snap.line())
    log.info("%d flows classified, %d flow records, findings: %s", t.classified, t.flows, kinds)
    if emitter.lost:
        log.error("output lost (could not be written): %s", t.lost_text())
