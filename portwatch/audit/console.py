"""The audit's console view: findings (deduplicated by the shared Summary), then the inventory of
what the host offers, then the configuration lines that could not be read."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..model import SEVERITY_RANK, FlowRecord
from ..report.console import SEVERITY_STYLE
from ..sanitize import clean_text
from .model import ParseError


def _endpoint(rec: FlowRecord) -> str:
    host = f"[{rec.dst_ip}]" if ":" in rec.dst_ip else rec.dst_ip
    return f"{host}:{rec.dst_port or '?'}/{rec.transport}"


def render_audit(console: Console, records: list[FlowRecord], errors: list[ParseError],
                 sources: list[str]) -> None:
    # Audit records are few and each finding names its own file:line, so every finding is shown:
    # the Summary's per-endpoint grouping would merge two services whose port is unknown.
    rows = sorted(((f, rec) for rec in records for f in rec.findings),
                  key=lambda fr: (-SEVERITY_RANK[fr[0].severity], fr[0].kind, fr[1].dst_port))
    if rows:
        table = Table(title=f"Findings ({len(rows)})")
        for col in ("severity", "kind", "where"):
            table.add_column(col)
        table.add_column("what", overflow="fold")
        for f, rec in rows:
            table.add_row(f"[{SEVERITY_STYLE[f.severity]}]{f.severity}[/]", f.kind, escape(_endpoint(rec)),
                          escape(f.message))
        console.print(table)
    else:
        console.print("[green]No findings.[/]")
    inventory = Table(title="Services and listeners")
    for col in ("from", "endpoint", "program", "user", "protocol", "assigned"):
        inventory.add_column(col)
    for rec in records:
        m = rec.meta
        origin = str(m.get("audit", ""))
        if origin == "listener":
            program = f"{m.get('process', '?')}[{m['pid']}]" if "pid" in m else "?"
        else:
            origin = f"{origin} {m.get('file', '')}:{m.get('line', '')}"
            program = f"{m.get('daemon', '')} ({m.get('service', '')})"
        inventory.add_row(escape(origin), escape(_endpoint(rec)), escape(program), escape(str(m.get("user", "?"))),
                          escape(rec.protocol), escape(" ".join(rec.assigned)))
    console.print(inventory)
    if errors:
        console.print(f"[yellow]{len(errors)} configuration line(s) could not be used:[/]")
        for e in errors:
            console.print(f"  {escape(clean_text(str(e), 500))}")
    console.print(f"{len(records)} service(s) and listener(s) from {escape(', '.join(sources) or 'nothing')}")
