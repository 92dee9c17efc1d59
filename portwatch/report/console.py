"""The analyst's default view: deduplicated findings, ranked, then flows per protocol.

Every string shown passed through `clean_text` when it entered the record; rich markup is still
escaped here so that a banner holding "[bold]" cannot restyle the report.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..model import CaptureStats
from .findings import SEVERITY_STYLE, when
from .summary import Summary


def render(console: Console, summary: Summary, stats: CaptureStats, sources: list[str]) -> None:
    groups = summary.sorted_groups()
    if groups:
        # One heading line per finding and its explanation indented below: readable at any width,
        # where a table squeezes the message into a sliver of an 80-column terminal or log.
        console.print(f"[bold]Findings[/] ({len(groups)}, worst first)")
        for g in groups:
            first, last = when(g.first_seen), when(g.last_seen)
            # The same day need not be said twice.
            seen = first if first == last else f"{first} .. {last[11:] if last[:10] == first[:10] else last}"
            flows = "1 flow" if g.count == 1 else f"{g.count} flows"
            clients = len(g.clients)
            who = f", {clients}{'+' if clients >= g.MAX_CLIENTS else ''} clients" if clients > 1 else ""
            console.print(
                f"[{SEVERITY_STYLE[g.severity]}]{g.severity.upper():<6}[/] [bold]{g.kind}[/]  "
                f"{escape(g.server)}/{g.transport}  {flows}{who}  {seen} UTC"
            )
            console.print(Padding(Text(g.message), (0, 0, 1, 7)))
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
