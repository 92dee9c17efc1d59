"""The servers inventory (`analyze --servers`): every server endpoint that answered, what it spoke.

The network's answer to `grep -v "^#" /etc/inetd.conf`: one row per (server address, port,
transport) with the protocol(s) detected, what /etc/services assigns to the port, how many
clients used it, bytes each way, and first/last seen, so an analyst can ask why each is offered.

Memory follows the number of servers, not flows: per server a few counters, at most
MAX_PROTOCOLS protocol names and at most MAX_CLIENTS client addresses (beyond that the count is
shown as "N+"). A flow in which the server never took part (a SYN answered by RST, a datagram
without reply) does not make an endpoint a server.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..model import FlowRecord
from .csvout import safe_cell
from .findings import when

MAX_CLIENTS = 4096
MAX_PROTOCOLS = 8
COLUMNS = ("server_ip", "port", "transport", "protocols", "assigned", "clients", "flows", "bytes_c2s", "bytes_s2c",
           "first_seen", "last_seen")


def is_server(rec: FlowRecord) -> bool:
    """Did the server side take part: bytes back, acknowledged client bytes, or a recognised protocol?"""
    if rec.bytes_s2c > 0:
        return True
    if rec.transport == "tcp":
        return rec.bytes_c2s > 0 and rec.packets_s2c > 0
    # one-way UDP (syslog, SNMP traps, NetFlow) still has a server when the protocol is recognised
    return rec.protocol != "unknown" and rec.bytes_c2s > 0


@dataclass(slots=True)
class ServerEntry:
    ip: str
    port: int
    transport: str
    assigned: list[str]
    first_seen: float
    last_seen: float
    protocols: Counter[str] = field(default_factory=Counter)
    clients: set[str] = field(default_factory=set)
    clients_capped: bool = False
    flows: int = 0
    bytes_c2s: int = 0
    bytes_s2c: int = 0

    def row(self) -> dict[str, Any]:
        return {
            "server_ip": self.ip,
            "port": self.port,
            "transport": self.transport,
            "protocols": [p for p, _ in self.protocols.most_common()],
            "assigned": list(self.assigned),
            "clients": len(self.clients),
            "clients_capped": self.clients_capped,
            "flows": self.flows,
            "bytes_c2s": self.bytes_c2s,
            "bytes_s2c": self.bytes_s2c,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }


@dataclass(slots=True)
class ServerInventory:
    servers: dict[tuple[str, int, str], ServerEntry] = field(default_factory=dict)

    def add(self, rec: FlowRecord) -> None:
        if not is_server(rec):
            return
        key = (rec.dst_ip, rec.dst_port, rec.transport)
        e = self.servers.get(key)
        if e is None:
            e = self.servers[key] = ServerEntry(rec.dst_ip, rec.dst_port, rec.transport, list(rec.assigned),
                                                rec.ts_start, rec.ts_end)
        e.flows += 1
        e.bytes_c2s += rec.bytes_c2s
        e.bytes_s2c += rec.bytes_s2c
        e.first_seen = min(e.first_seen, rec.ts_start)
        e.last_seen = max(e.last_seen, rec.ts_end)
        if rec.protocol in e.protocols or len(e.protocols) < MAX_PROTOCOLS:
            e.protocols[rec.protocol] += 1
        if len(e.clients) < MAX_CLIENTS:
            e.clients.add(rec.src_ip)
        elif rec.src_ip not in e.clients:
            e.clients_capped = True

    def rows(self) -> list[dict[str, Any]]:
        """One dict per server endpoint, ordered by port, transport, address (the API's table)."""
        return [e.row() for e in sorted(self.servers.values(), key=_order)]


def _order(e: ServerEntry) -> tuple:
    return (e.port, e.transport, e.ip)


def _protocols_text(row: dict[str, Any]) -> str:
    known = [p for p in row["protocols"] if p != "unknown"]
    return ",".join(known) + (" (+unknown)" if "unknown" in row["protocols"] and known else "") if known \
        else "unknown"


def write_servers(inv: ServerInventory, fmt: str, out: TextIO) -> None:
    rows = inv.rows()
    if fmt == "jsonl":
        for r in rows:
            out.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            flat = dict(r, protocols=" ".join(r["protocols"]), assigned=" ".join(r["assigned"]),
                        clients=f"{r['clients']}+" if r["clients_capped"] else r["clients"])
            writer.writerow({k: safe_cell(v) for k, v in flat.items()})
    else:
        console = Console(file=out, highlight=False, soft_wrap=False, width=max(Console(file=out).width, 140))
        table = Table(title=f"Servers ({len(rows)})")
        for name in ("server", "protocol", "/etc/services", "clients", "flows", "bytes c2s", "bytes s2c",
                     "first seen (UTC)", "last seen (UTC)"):
            table.add_column(name, justify="right" if name.startswith(("clients", "flows", "bytes")) else "left")
        for r in rows:
            ip = f"[{r['server_ip']}]" if ":" in r["server_ip"] else r["server_ip"]
            table.add_row(
                escape(f"{ip}:{r['port']}/{r['transport']}"),
                escape(_protocols_text(r)),
                escape(", ".join(r["assigned"]) or "-"),
                f"{r['clients']}+" if r["clients_capped"] else str(r["clients"]),
                str(r["flows"]),
                str(r["bytes_c2s"]),
                str(r["bytes_s2c"]),
                when(r["first_seen"]),
                when(r["last_seen"]),
            )
        console.print(table)
    out.flush()
