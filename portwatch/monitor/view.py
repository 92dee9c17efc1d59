"""What the operator sees: a rich live view on a terminal, plain log lines everywhere else.

Under systemd (no terminal) every finding is one log line and a status line is logged every
`--stats-interval` seconds, which the journal timestamps and keeps.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from ..model import Finding, FlowRecord
from ..report.console import SEVERITY_STYLE
from .emit import Tally

log = logging.getLogger("portwatch.monitor")


@dataclass(slots=True)
class Snapshot:
    """Counters at one instant, for the view and the final summary."""

    uptime: float
    packets: int
    pps: float
    live_flows: int
    flows_done: int
    kernel_drops: int
    evicted: int
    fragments_dropped: int
    truncated: int
    malformed: int
    errors: int = 0  # internal errors caught by the loop (a bug, logged with its traceback)

    def internal_drops(self) -> int:
        return self.evicted + self.fragments_dropped + self.truncated

    def line(self) -> str:
        return (
            f"{self.packets} packets ({self.pps:.0f}/s), {self.live_flows} live flows, {self.flows_done} done, "
            f"kernel drops {self.kernel_drops}, internal drops {self.internal_drops()} "
            f"(evicted flows {self.evicted}, fragments {self.fragments_dropped}, truncated frames {self.truncated}),"
            f" malformed {self.malformed}" + (f", internal errors {self.errors}" if self.errors else "")
        )


def _server(rec: FlowRecord) -> str:
    host = f"[{rec.dst_ip}]" if ":" in rec.dst_ip else rec.dst_ip
    return f"{host}:{rec.dst_port}/{rec.transport}"


def finding_text(rec: FlowRecord, f: Finding) -> str:
    return f"{f.severity} {f.kind} {rec.protocol} {rec.src_ip} -> {_server(rec)}: {f.message}"


class LogView:
    def __init__(self, stats_interval: float) -> None:
        self.stats_interval = stats_interval
        self.next_stats = time.monotonic() + stats_interval

    def finding(self, rec: FlowRecord, f: Finding, flow_id: str) -> None:
        log.warning("finding %s [flow %s]", finding_text(rec, f), flow_id)

    def tick(self, snap: Snapshot, tally: Tally) -> None:
        if self.stats_interval > 0 and time.monotonic() >= self.next_stats:
            self.next_stats = time.monotonic() + self.stats_interval
            lost = tally.lost_text()
            log.info("status: %s, %d findings%s", snap.line(), sum(tally.findings.values()),
                     f", output lost: {lost}" if lost else "")

    def close(self) -> None:
        pass


class RichView:
    """A panel redrawn a few times a second: rates, drops, findings by kind, the newest findings."""

    def __init__(self, console: Console, sources: str) -> None:
        self.console = console
        self.sources = sources
        self.live = Live(console=console, auto_refresh=False, transient=False)
        self.live.start()

    def finding(self, rec: FlowRecord, f: Finding, flow_id: str) -> None:
        pass  # shown by the next tick, from the tally

    def tick(self, snap: Snapshot, tally: Tally) -> None:
        self.live.update(self._render(snap, tally), refresh=True)

    def _render(self, snap: Snapshot, tally: Tally) -> Group:
        head = Table.grid(padding=(0, 2))
        head.add_row(
            f"[bold]portwatch monitor[/] {escape(self.sources)}",
            f"up {int(snap.uptime)}s",
            f"{snap.pps:,.0f} pkt/s",
            f"{snap.packets:,} packets",
            f"{snap.live_flows:,} live flows",
            f"{snap.flows_done:,} flows done",
        )
        drops_style = "bold red" if snap.kernel_drops else "green"
        head.add_row(
            f"[{drops_style}]kernel drops {snap.kernel_drops:,}[/]",
            f"internal drops {snap.internal_drops():,}",
            f"evicted {snap.evicted:,}",
            f"malformed {snap.malformed:,}"
            + (f" [bold red]output lost: {escape(tally.lost_text())}[/]" if tally.lost_text() else ""),
            "findings " + ", ".join(f"{k} {tally.by_kind[k]}" for k in sorted(tally.by_kind)) or "findings 0",
            "",
        )
        table = Table(title="Newest findings", expand=True)
        for col in ("seen (UTC)", "severity", "kind", "protocol", "client", "server"):
            table.add_column(col, no_wrap=True)
        table.add_column("what", overflow="fold")
        for when, rec, f in reversed(tally.recent):
            table.add_row(
                datetime.fromtimestamp(when, UTC).strftime("%H:%M:%S"),
                f"[{SEVERITY_STYLE.get(f.severity, '')}]{f.severity}[/]",
                escape(f.kind), escape(rec.protocol), escape(rec.src_ip), escape(_server(rec)), escape(f.message),
            )
        return Group(head, table)

    def close(self) -> None:
        self.live.stop()
