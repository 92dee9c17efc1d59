"""The findings table (`analyze --findings-only`): one row per server endpoint and finding kind.

Console: a rich table, worst first. jsonl: one object per row. csv: the same columns, cells
neutralised against formula injection. Messages already passed through `clean_text` when the
findings were made (they quote banners, SNI and DNS names).
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .csvout import safe_cell
from .summary import FindingGroup

COLUMNS = ("severity", "kind", "server", "transport", "protocol", "count", "clients", "first_seen", "last_seen",
           "message")
SEVERITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}


def when(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "?"


def write_findings(groups: list[FindingGroup], fmt: str, out: TextIO) -> None:
    if fmt == "jsonl":
        for g in groups:
            out.write(json.dumps(g.as_row(), ensure_ascii=False, separators=(",", ":")) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        for g in groups:
            row = dict(g.as_row(), clients=g.client_count)
            writer.writerow({k: safe_cell(row[k]) for k in COLUMNS})
    else:
        console = Console(file=out, highlight=False, soft_wrap=False, width=max(Console(file=out).width, 160))
        render_findings(console, groups)
    out.flush()


def render_findings(console: Console, groups: list[FindingGroup]) -> None:
    if not groups:
        console.print("No findings.")
        return
    table = Table(title=f"Findings ({len(groups)} server/kind pairs, {sum(g.count for g in groups)} flows)")
    for name, kw in (("severity", {}), ("kind", {"no_wrap": True}), ("server", {"no_wrap": True}),
                     ("protocol", {}), ("flows", {"justify": "right"}), ("clients", {"justify": "right"}),
                     ("first .. last seen (UTC)", {}), ("what", {"overflow": "fold", "ratio": 1})):
        table.add_column(name, **kw)  # type: ignore[arg-type]
    for g in groups:
        seen = when(g.first_seen) if g.first_seen == g.last_seen else f"{when(g.first_seen)} .. {when(g.last_seen)}"
        table.add_row(
            f"[{SEVERITY_STYLE.get(g.severity, '')}]{g.severity}[/]",
            g.kind,
            f"{escape(g.server)}/{g.transport}",
            escape(",".join(g.protocols) or g.protocol),
            str(g.count),
            g.client_count,
            seen,
            escape(g.message),
        )
    console.print(table)
