"""Baselines: the servers a network is known to offer, and what is new since.

`portwatch baseline save CAPTURE... -o baseline.json` records the servers inventory of known-good
captures; `portwatch analyze --baseline baseline.json` raises `new-service` for every server
endpoint, or protocol on a known endpoint, that the baseline does not hold (a daemon left behind
after a break-in shows up here). `inventory()` is the same table for the Python API.

File format (JSON): {"portwatch_baseline": 1, "created": ISO time, "captures": [...],
"servers": [servers-inventory rows (`report.schema.SERVER_COLUMNS`): dst_ip, dst_port, transport,
protocols, assigned, clients, clients_capped, flows, bytes_c2s, bytes_s2c, first_seen, last_seen]}.
Baselines written before the columns were renamed (server_ip, port) are still read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .model import FlowRecord
from .pipeline import CaptureError, Config, Setup, analyze_path
from .policy.rules import endpoint, port_text
from .report.safeopen import create_output
from .report.servers import ServerInventory, is_server
from .userfile import read_bounded

FORMAT_VERSION = 1
# A baseline file at most: ~1.5 million server rows, far past any network's; past it, /dev/zero
# or a runaway file.
MAX_BASELINE_BYTES = 256 << 20
EPHEMERAL_FLOOR = 1024


class BaselineError(Exception):
    """A baseline file cannot be used; str() is one line naming the file."""


@dataclass(slots=True)
class Baseline:
    source: str
    servers: dict[tuple[str, int, str], frozenset[str]] = field(default_factory=dict)

    def check(self, rec: FlowRecord, registry: str = "/etc/services") -> tuple[str, str | None] | None:
        """(why this flow's server is new, severity or None for the policy's), None when known.
        `registry`: how the messages name the services database (ServicesDB.registry)."""
        if not is_server(rec) or "control_flow_id" in rec.meta:
            # an announced data or media connection (ftp-data, rtp) is its control connection's
            # business, on a port negotiated afresh each time: that server is the one to know
            return None
        key = (rec.dst_ip, rec.dst_port, rec.transport)
        where = port_text(rec.assigned, rec.dst_port, rec.transport, registry)
        server = endpoint(rec.dst_ip, rec.dst_port)
        known = self.servers.get(key)
        if known is None:
            text = (f"new server {server} on {where} speaking {rec.protocol}, not in baseline {self.source} "
                    f"({len(self.servers)} servers): ask why it is offered")
            if rec.protocol == "unknown" and not rec.assigned and rec.dst_port >= EPHEMERAL_FLOOR:
                # FTP data, RTP and other negotiated channels land on fresh high ports every time
                return text + " (an unrecognised high port: possibly a negotiated data channel)", "low"
            return text, None
        if rec.protocol != "unknown" and rec.protocol not in known:
            return (f"{server} on {where} now speaks {rec.protocol}; baseline {self.source} recorded "
                    f"{', '.join(sorted(known)) or 'nothing recognised'} there"), None
        return None


def load_baseline(path: str | Path) -> Baseline:
    p = Path(path)
    try:
        doc = json.loads(read_bounded(p, MAX_BASELINE_BYTES).decode("utf-8"))
    except OSError as exc:
        raise BaselineError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"{p}: not a portwatch baseline (invalid JSON: {exc})") from None
    except RecursionError:  # json recurses per nesting level: a hostile file's thousands of them
        raise BaselineError(f"{p}: not a portwatch baseline (JSON nested too deeply)") from None
    if not isinstance(doc, dict) or doc.get("portwatch_baseline") != FORMAT_VERSION:
        raise BaselineError(f"{p}: not a portwatch baseline (version {FORMAT_VERSION} expected; "
                            "write one with `portwatch baseline save`)")
    servers = doc.get("servers")
    if not isinstance(servers, list):
        raise BaselineError(f"{p}: servers: must be a list")
    base = Baseline(p.name)
    for i, row in enumerate(servers):
        try:
            ip = row["dst_ip"] if "dst_ip" in row else row["server_ip"]
            port = row["dst_port"] if "dst_port" in row else row["port"]
            key = (str(ip), int(port), str(row["transport"]))
            protos = frozenset(str(x) for x in row.get("protocols", []))
        except (KeyError, TypeError, ValueError):
            raise BaselineError(f"{p}: servers[{i}]: needs dst_ip, dst_port, transport and protocols") from None
        base.servers[key] = base.servers.get(key, frozenset()) | protos
    return base


def scan(captures: Iterable[str], config: Config | None = None, setup: Setup | None = None,
         inventory: ServerInventory | None = None) -> tuple[ServerInventory, list[str]]:
    """Run the pipeline over capture files; the servers inventory and one-line errors."""
    config = config or Config()
    setup = setup or Setup.load(config)
    inv = inventory if inventory is not None else ServerInventory()
    errors: list[str] = []
    for path in captures:
        try:
            stats = analyze_path(path, setup, config, inv.add)
            if stats.error:
                errors.append(stats.error)
        except CaptureError as exc:
            errors.append(str(exc))
    return inv, errors


def inventory(captures: Iterable[str], config: Config | None = None) -> list[dict[str, Any]]:
    """The servers inventory of capture files, one dict per server endpoint (for the Python API)."""
    inv, errors = scan(captures, config)
    if errors and not inv.servers:
        raise CaptureError("; ".join(errors))
    return inv.rows()


def baseline_document(inv: ServerInventory, captures: list[str]) -> dict[str, Any]:
    return {
        "portwatch_baseline": FORMAT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "captures": captures,
        "servers": inv.rows(),
    }


def save_baseline(inv: ServerInventory, captures: list[str], path: str | Path) -> None:
    with open(create_output(str(path)), "w", encoding="utf-8") as fh:  # a symbolic link is refused
        fh.write(json.dumps(baseline_document(inv, captures), indent=1) + "\n")
