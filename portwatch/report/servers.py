"""The servers inventory (`analyze --servers`): every server endpoint that answered, what it spoke.

The network's answer to `grep -v "^#" /etc/inetd.conf`: one row per (server address, port,
transport) with the protocol(s) detected, what /etc/services assigns to the port, how many
clients used it, bytes each way, and first/last seen, so an analyst can ask why each is offered.

Memory follows the number of servers, not flows: per server a few counters (~800 bytes), at most
MAX_PROTOCOLS protocol names and at most MAX_CLIENTS client addresses, and at most
MAX_CLIENT_ADDRESSES over every server (beyond either, the count is shown as "N+"). A flow in
which the server never took part (a SYN answered by RST, a datagram without reply) does not make
an endpoint a server.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..model import FlowRecord
from .clients import keep_client
from .csvout import safe_cell
from .findings import human_bytes, plural, span, when
from .schema import SERVER_COLUMNS, join_list, server_label

MAX_CLIENTS = 4096
MAX_CLIENT_ADDRESSES = 1_000_000  # ~90 bytes each
MAX_PROTOCOLS = 8
COLUMNS = SERVER_COLUMNS


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
            "dst_ip": self.ip,
            "dst_port": self.port,
            "transport": self.transport,
            # most frequent first, ties by name: the same whatever order the flows came in
            "protocols": [p for p, _ in sorted(self.protocols.items(), key=lambda kv: (-kv[1], kv[0]))],
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
    # Client addresses held over every entry's `clients` (at most MAX_CLIENT_ADDRESSES).
    client_addresses: int = 0

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
        held = keep_client(e.clients, rec.src_ip, self.client_addresses, MAX_CLIENTS, MAX_CLIENT_ADDRESSES)
        if held is None:
            e.clients_capped = True
        else:
            self.client_addresses = held

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
            flat = dict(r, protocols=join_list(r["protocols"]), assigned=join_list(r["assigned"]))
            writer.writerow({k: safe_cell(v) for k, v in flat.items()})
    else:
        render_servers(Console(file=out, highlight=False, soft_wrap=False), rows)
    out.flush()


WIDE = 130  # from this width on, first and last seen get columns of their own


def render_servers(console: Console, rows: list[dict[str, Any]]) -> None:
    """The servers table, fitting the console's width (80 columns included)."""
    flows = sum(r["flows"] for r in rows)
    console.print(f"[bold]Servers[/] ({len(rows):,}, {plural(flows, 'flow')})")
    if rows:
        console.print(span(min(r["first_seen"] for r in rows), max(r["last_seen"] for r in rows)))
    wide = console.width >= WIDE
    # Light borders and one bytes column: an IPv6 server and its protocol still fit 80 columns. The
    # address is never cut; the protocol and /etc/services columns wrap when they must.
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("server", no_wrap=True)
    table.add_column("protocol", overflow="fold")
    table.add_column("assigned", overflow="fold")  # what /etc/services names the port
    table.add_column("clients", justify="right")
    table.add_column("flows", justify="right")
    table.add_column("bytes c2s/s2c", justify="right", no_wrap=True)
    if wide:
        table.add_column("first seen (UTC)")
        table.add_column("last seen (UTC)")
    for r in rows:
        cells = [
            escape(f"{server_label(r['dst_ip'], r['dst_port'])}/{r['transport']}"),
            escape(_protocols_text(r)),
            escape(", ".join(r["assigned"]) or "-"),
            f"{r['clients']:,}+" if r["clients_capped"] else f"{r['clients']:,}",
            f"{r['flows']:,}",
            f"{human_bytes(r['bytes_c2s'])}/{human_bytes(r['bytes_s2c'])}",
        ]
        if wide:
            cells += [when(r["first_seen"]), when(r["last_seen"])]
        table.add_row(*cells)
    console.print(table)
