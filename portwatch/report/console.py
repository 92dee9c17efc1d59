"""The analyst's default view: findings per server and kind, worst first (the top N unless --all),
totals per kind and severity, flows per protocol, then what was read.

Every string shown passed through `clean_text` when it entered the record; rich markup is still
escaped here (or text is shown as `Text`, which has none) so that a banner holding "[bold]" cannot
restyle the report. Every line fits the console's width (80 columns when stdout is not a terminal
and COLUMNS is unset): long messages wrap under their heading, never across a table.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..model import CaptureStats
from .findings import SEVERITY_STYLE, plural, render_groups, render_totals, span
from .summary import TOP_FINDINGS, Summary

__all__ = ["SEVERITY_STYLE", "render"]


def render(console: Console, summary: Summary, stats: CaptureStats, sources: list[str], *,
           top: int | None = TOP_FINDINGS, quiet: bool = False) -> None:
    """The report. `top`: findings shown (None: every one). `quiet`: the findings only."""
    groups = summary.sorted_groups()
    if groups:
        more = f", the top {top}" if top is not None and len(groups) > top else ""
        console.print(f"[bold]Findings[/] ({len(groups):,} per server and kind{more}, worst first)")
        render_groups(console, groups, top)
        if (note := summary.unlisted_note()) is not None:
            console.print(note)
        if not quiet:
            render_totals(console, summary.counts())
    elif not quiet:
        console.print("[green]No findings.[/]")
    if quiet:
        return
    proto = Table(title="Flows per protocol", title_justify="left")
    proto.add_column("protocol")
    proto.add_column("flows", justify="right")
    for name, count in sorted(summary.by_protocol.items(), key=lambda kv: (-kv[1], kv[0])):
        proto.add_row(escape(name), f"{count:,}")
    console.print(proto)
    extra = []
    if stats.filtered:
        extra.append(f"{stats.filtered:,} left out by the filter")
    if stats.malformed:
        extra.append(f"{stats.malformed:,} malformed")
    if stats.non_ip:
        encrypted = f", {stats.encrypted_frames:,} of them encrypted 802.11" if stats.encrypted_frames else ""
        extra.append(f"{stats.non_ip:,} not TCP/UDP{encrypted}")
    if stats.unsupported_link:
        extra.append(f"{stats.unsupported_link:,} on unsupported link types")
    if stats.flows_evicted:
        extra.append(f"{plural(stats.flows_evicted, 'flow')} evicted (flow table full)")
    if stats.fragments:
        extra.append(f"{stats.fragments:,} IP fragments")
    where = escape(", ".join(sources)) if len(sources) <= 3 else f"{len(sources):,} captures"
    console.print(f"{plural(stats.packets, 'packet')}, {plural(summary.flows, 'flow')} from {where}"
                  + (f" ({'; '.join(extra)})" if extra else ""))
    if summary.flows:
        console.print(span(summary.first_seen, summary.last_seen))
