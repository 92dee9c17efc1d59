"""The findings table (`analyze --findings-only`): one row per server endpoint, kind and protocol.

Console: the findings as the main report shows them (a heading line per finding, its explanation
indented below, readable at 80 columns), then totals per kind and severity. jsonl: one object per
row, csv: the same columns (`schema.FINDING_COLUMNS`), cells neutralised against formula injection.
Messages already passed through `clean_text` when the findings were made (they quote banners, SNI
and DNS names); rich markup is escaped here.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import UTC, datetime
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..model import SEVERITIES
from .csvout import safe_cell
from .schema import FINDING_COLUMNS
from .summary import FindingGroup

COLUMNS = FINDING_COLUMNS
SEVERITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}
INDENT = 7


def when(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "?"


def span(first: float, last: float) -> str:
    """``first .. last UTC``, the day not said twice."""
    a, b = when(first), when(last)
    if a == b:
        return f"{a} UTC"
    return f"{a} .. {b[11:] if b[:10] == a[:10] else b} UTC"


def plural(n: int, word: str) -> str:
    """``1 flow``, ``2 flows``, ``12,345 flows``."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def human_bytes(n: float) -> str:
    """``512 B``, ``4.3 kB``, ``12 MB`` (decimal units, as ``ls --si``)."""
    value, unit = float(n), 0
    units = ("B", "kB", "MB", "GB", "TB", "PB")
    while value >= 1000 and unit < len(units) - 1:
        value /= 1000
        unit += 1
    if unit == 0:
        return f"{int(value)} B"
    return f"{value:.1f} {units[unit]}" if value < 10 else f"{value:.0f} {units[unit]}"


def write_findings(groups: list[FindingGroup], fmt: str, out: TextIO, counts: Counter[tuple[str, str]] | None = None,
                   note: str | None = None) -> None:
    """The findings table; `note` (the summary's word on findings it did not list) closes the console
    form (a jsonl or csv table holds rows only: the caller says it elsewhere)."""
    if fmt == "jsonl":
        for g in groups:
            out.write(json.dumps(g.as_row(), ensure_ascii=False, separators=(",", ":")) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        for g in groups:
            writer.writerow({k: safe_cell(v) for k, v in g.as_row().items()})
    else:
        console = Console(file=out, highlight=False, soft_wrap=False)
        render_findings(console, groups, counts)
        if note is not None:
            console.print(note)
    out.flush()


def render_findings(console: Console, groups: list[FindingGroup],
                    counts: Counter[tuple[str, str]] | None = None) -> None:
    if not groups:
        console.print("No findings.")
        return
    flows = sum(g.count for g in groups)
    console.print(f"[bold]Findings[/] ({len(groups):,} per server and kind, {plural(flows, 'flow')}, worst first)")
    render_groups(console, groups)
    render_totals(console, counts if counts is not None else totals_of(groups))


def render_groups(console: Console, groups: list[FindingGroup], limit: int | None = None) -> None:
    """One heading line per finding (severity, kind, server, protocol, flows, clients; the time range
    on the same line when it fits, else on the next) and its message indented below."""
    shown = groups if limit is None else groups[:limit]
    for g in shown:
        clients = len(g.clients)
        who = f", {clients:,}{'+' if g.clients_capped else ''} clients" if clients > 1 else ""
        head = Text.assemble(
            (f"{g.severity.upper():<6}", SEVERITY_STYLE.get(g.severity, "")), " ", (g.kind, "bold"),
            f"  {g.server}/{g.transport}  {g.protocol}  {plural(g.count, 'flow')}{who}",
        )
        seen = span(g.first_seen, g.last_seen)
        if head.cell_len + 2 + len(seen) <= console.width:
            head.append(f"  {seen}")
            console.print(head)
        else:
            console.print(head)
            console.print(Padding(Text(seen), (0, 0, 0, INDENT)))
        console.print(Padding(Text(g.message), (0, 0, 1, INDENT)))
    hidden = groups[len(shown):]
    if hidden:
        console.print(f"... and {plural(len(hidden), 'more finding')} ({plural(sum(g.count for g in hidden), 'flow')}"
                      f") not shown: --all shows every one, --findings-only lists them as a table\n")


def totals_of(groups: list[FindingGroup]) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for g in groups:
        for sev, n in g.by_severity.items():
            out[(g.kind, sev)] += n
    return out


def render_totals(console: Console, counts: Counter[tuple[str, str]]) -> None:
    """Flows with findings per kind (rows) and severity (columns), with totals."""
    if not counts:
        return
    sevs = [s for s in reversed(SEVERITIES) if any(k[1] == s for k in counts)]
    table = Table(title="Findings per kind and severity (flows)", title_justify="left")
    table.add_column("kind", no_wrap=True)
    for s in sevs:
        table.add_column(f"[{SEVERITY_STYLE[s]}]{s}[/]", justify="right")
    table.add_column("total", justify="right")
    kinds = sorted({k for k, _ in counts}, key=lambda k: (-sum(n for (kk, _), n in counts.items() if kk == k), k))
    for kind in kinds:
        row = [counts.get((kind, s), 0) for s in sevs]
        table.add_row(escape(kind), *[f"{n:,}" if n else "-" for n in row], f"{sum(row):,}")
    per_sev = [sum(counts.get((k, s), 0) for k in kinds) for s in sevs]
    table.add_row("[bold]total[/]", *[f"{n:,}" for n in per_sev], f"{sum(per_sev):,}")
    console.print(table)
