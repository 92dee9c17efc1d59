"""What the operator sees: a rich live view on a terminal, plain log lines everywhere else.

Under systemd (no terminal) every finding is one log line and a status line is logged every
`--stats-interval` seconds, which the journal timestamps and keeps.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.padding import Padding
from rich.text import Text

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

    def stop(self, snap: Snapshot, tally: Tally) -> None:
        pass

    def close(self) -> None:
        pass


class RichView:
    """A screen redrawn a few times a second: rates, drops, findings by kind, the newest findings.

    Laid out like `analyze`'s report so that it reads at 80 columns (and in an 80x24 tmux pane):
    short status lines that wrap between their items, then the newest findings, each a heading
    line (time, severity, kind, server, protocol, client) with its message wrapped and indented
    below it. Nothing is squeezed into a column or cut: an address or a message wraps instead. On
    a terminal, findings are shown newest first as long as each fits whole in the height left;
    without a terminal size (output to a file or a pipe) every recent finding is shown whole.
    Log lines (a reload, a failing output) are printed above the view while it runs; the final
    summary is logged after it has stopped, below its last frame.
    """

    def __init__(self, console: Console, sources: str) -> None:
        self.console = console
        self.sources = sources
        self.live = Live(console=console, auto_refresh=False, transient=False, vertical_overflow="crop")
        self.live.start()
        self._handlers = _log_to_console(console)
        self.closed = False

    def finding(self, rec: FlowRecord, f: Finding, flow_id: str) -> None:
        pass  # shown by the next tick, from the tally

    def tick(self, snap: Snapshot, tally: Tally) -> None:
        self.live.update(self._render(snap, tally), refresh=True)

    def _status(self, snap: Snapshot, tally: Tally) -> list[Text]:
        sep = "  "
        title = Text.assemble(("portwatch monitor", "bold"), " ", self.sources, sep, f"up {_duration(snap.uptime)}")
        rates = Text(sep.join((f"{snap.pps:,.0f} pkt/s", f"{snap.packets:,} packets",
                               f"{snap.live_flows:,} live flows", f"{snap.flows_done:,} done")))
        drops = Text.assemble((f"kernel drops {snap.kernel_drops:,}", "bold red" if snap.kernel_drops else "green"),
                              sep, f"internal drops {snap.internal_drops():,}", sep, f"malformed {snap.malformed:,}")
        lost = tally.lost_text()
        if lost:
            drops.append(f"{sep}output lost: {lost}", style="bold red")
        kinds = ", ".join(f"{k} {tally.by_kind[k]:,}" for k in sorted(tally.by_kind)) or "none yet"
        return [title, rates, drops, Text(f"findings: {kinds}")]

    def _render(self, snap: Snapshot, tally: Tally) -> Group:
        width = max(20, self.console.width)
        parts: list[RenderableType] = list(self._status(snap, tally))
        if not tally.recent:
            return Group(*parts)
        options = self.console.options.update(width=width)
        used = sum(len(self.console.render_lines(p, options, pad=False)) for p in parts) + 1
        # On a terminal, as many of the newest findings as fit whole; else all of them.
        room = self.console.height - used if self.console.is_terminal else None
        shown: list[RenderableType] = []
        for when, rec, f in reversed(tally.recent):
            block = finding_block(when, rec, f)
            lines = len(self.console.render_lines(block, options, pad=False))
            if room is not None and shown and lines > room:
                break
            shown.append(block)
            if room is not None:
                room -= lines
        heading = Text.assemble(("Newest findings", "bold"),
                                f" ({len(shown)} of the last {len(tally.recent)})" if len(shown) < len(tally.recent)
                                else "")
        return Group(*parts, heading, *shown)

    def stop(self, snap: Snapshot, tally: Tally) -> None:
        """The last frame, with the final counts; the view stops but stays on the screen, and log
        lines (the final summary) go on through the console, wrapped between words."""
        if not self.closed:
            self.tick(snap, tally)
            self.closed = True
            self.live.stop()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.live.stop()
        _restore_logging(self._handlers)
        self._handlers = []


FINDING_INDENT = 9  # under the heading's time column: "HH:MM:SS "


def finding_block(when: float, rec: FlowRecord, f: Finding) -> Group:
    """One finding: a heading line, then its message indented below, both wrapping (never cut; a
    word longer than the line, an IPv6 address in a narrow pane, folds).

    Attacker-influenced text (the message quotes banners, names) is shown as `Text`, which has no
    markup to interpret."""
    head = Text.assemble(
        datetime.fromtimestamp(when, UTC).strftime("%H:%M:%S"), " ",
        (f"{f.severity.upper():<6}", SEVERITY_STYLE.get(f.severity, "")), " ", (f.kind, "bold"),
        f"  {_server(rec)}  {rec.protocol}  from {rec.src_ip}", overflow="fold",
    )
    return Group(head, Padding(Text(f.message, overflow="fold"), (0, 0, 0, FINDING_INDENT)))


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class _ConsoleLog(logging.Handler):
    """Log records printed through the live view's console: above the view, not into it."""

    def __init__(self, console: Console, formatter: logging.Formatter | None) -> None:
        super().__init__()
        self.console = console
        if formatter is not None:
            self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.print(Text(self.format(record)))
        except Exception:
            self.handleError(record)


def _log_to_console(console: Console) -> list[logging.Handler]:
    """While the view runs, root's handlers writing to a terminal on stderr go through `console`
    (whose output is that terminal too), so a log line does not tear the view. Returns the
    handlers replaced, for `_restore_logging`."""
    root = logging.getLogger()
    replaced: list[logging.Handler] = [h for h in root.handlers if isinstance(h, logging.StreamHandler)
                and getattr(h.stream, "isatty", lambda: False)() and console.is_terminal]
    for h in replaced:
        root.removeHandler(h)
        root.addHandler(_ConsoleLog(console, h.formatter))
    return replaced


def _restore_logging(replaced: list[logging.Handler]) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        if isinstance(h, _ConsoleLog):
            root.removeHandler(h)
    for h in replaced:
        root.addHandler(h)
