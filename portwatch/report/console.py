"""The analyst's default view: deduplicated findings, ranked, then flows per protocol.

Every string shown passed through `clean_text` when it entered the record; rich markup is still
escaped here so that a banner holding "[bold]" cannot restyle the report.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..model import CaptureStats
from .summary import Summary

SEVERITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}


def _when(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "?"


def render(console: Console, summary: Summary, stats: CaptureStats, sources: list[str]) -> None:
    groups = summary.sorted_groups()
    if groups:
        table = Table(title=f"Findings ({len(groups)})", show_lines=False, expand=False)
        table.add_column("severity")
        table.add_column("kind")
        table.add_column("server")
        table.add_column("flows", justify="right")
        table.add_column("seen (UTC)")
        table.add_column("what", overflow="fold")
        for g in groups:
            seen = _when(g.first_seen) if g.count == 1 else f"{_when(g.first_seen)} .. {_when(g.last_seen)}"
            table.add_row(
                f"[{SEVERITY_STYLE[g.severity]}]{g.severity}[/]",
                g.kind,
                f"{escape(g.server)}/{g.transport}",
                str(g.count),
                seen,
                escape(g.message),
            )
        console.print(table)
    else:
        console.print("[green]No findings.[/]")
    proto = Table(title="Flows per protocol")
    proto.add_column("protocol")
    proto.add_column("flows", justify="right")
    for name, count in sorted(summary.by_protocol.items(), key=lambda kv: (-kv[1], kv[0])):
        proto.add_row(escape(name), str(count))
    console.print(proto)
    extra = []
    if stats.malformed:
        extra.append(f"{stats.malformed} malformed")
    if stats.non_ip:
        extra.append(f"{stats.non_ip} not TCP/UDP")
    if stats.unsupported_link:
        extra.append(f"{stats.unsupported_link} on unsupported link types")
    if stats.flows_evicted:
        extra.append(f"{stats.flows_evicted} flows evicted (flow table full)")
    if stats.fragments:
        extra.append(f"{stats.fragments} IP fragments")
    console.print(
        f"{stats.packets} packets, {summary.flows} flows from {escape(', '.join(sources))}"
        + (f" ({'; '.join(extra)})" if extra else "")
    )
