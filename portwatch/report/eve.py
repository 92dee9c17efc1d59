"""Suricata-EVE-compatible JSON lines (`analyze --format eve`): what a SIEM pipeline built for
Suricata's eve.json takes as it is (Elastic's and Splunk's Suricata integrations, jq recipes).

Per flow one ``event_type: "flow"`` line, and before it one ``event_type: "alert"`` line per finding
of that flow, with Suricata's common fields: ``timestamp`` (ISO 8601, microseconds and offset, as
Suricata writes it: ``2026-11-26T15:13:53.123456+0000``), ``flow_id`` (integer: the record's
flow_id, unique within its capture but for a GTP-U tunnel and the first flow inside it, see
docs/schema.md; ``pcap_filename`` says which), ``community_id`` (v1),
``src_ip``/``src_port`` (the client), ``dest_ip``/``dest_port`` (the server), ``proto`` ("TCP",
"UDP"), ``app_proto`` (the canonical protocol name; "failed" when none was recognised, as Suricata
says), and ``flow`` {pkts_toserver, pkts_toclient, bytes_toserver, bytes_toclient, start, end, age,
state (new, established, closed, from the Zeek-like state), alerted}.

``alert``: ``action`` "allowed" (portwatch only watches), ``gid`` 1, ``signature_id`` (a fixed number
per finding kind, `SIGNATURE_IDS`), ``rev`` 1, ``signature``
("PORTWATCH <kind>: <message>"), ``category`` (the kind), ``severity`` (1 high, 2 medium, 3 low and
info, Suricata's priorities) and ``metadata`` {portwatch_severity: [...]}.

Everything portwatch knows beyond EVE's fields is under ``portwatch`` (protocol, assigned,
orientation, confidence, duration, Zeek's conn_state and history, meta, findings), so
`portwatch.read()` turns flow lines back into the very records. Byte counters are transport payload
bytes (Suricata counts whole packets: compare flows, not bytes).
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any, TextIO

from ..model import FlowRecord
from .jsonl import encode_bytes, encode_line

SIGNATURE_BASE = 9_100_000
EVE_SEVERITY = {"high": 1, "medium": 2, "low": 3, "info": 3}
# Zeek's conn_state to Suricata's flow.state.
_CLOSED = frozenset({"SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR"})


def timestamp(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f%z")
    except (OverflowError, OSError, ValueError, TypeError):
        return "1970-01-01T00:00:00.000000+0000"


# Fixed numbers: a SIEM rule keyed on a signature_id must not change when a kind is added. New kinds
# take the next free number here.
SIGNATURE_IDS = {kind: SIGNATURE_BASE + n for n, kind in enumerate((
    "port-mismatch", "tunnel", "encrypted-unknown", "cleartext-on-secure-port", "insecure-protocol",
    "unassigned-port", "dns-tunnel", "new-service", "stream-anomaly", "root-service", "unwrapped-service",
    "unknown-service", "privileged-source-port", "ftp-bounce",
), start=1)}


def signature_id(kind: str) -> int:
    if kind in SIGNATURE_IDS:
        return SIGNATURE_IDS[kind]
    return SIGNATURE_BASE + 1000 + zlib.crc32(kind.encode()) % 1000  # a kind not listed: stable all the same


def flow_state(d: dict[str, Any]) -> str:
    state = d.get("state")
    if d.get("transport") == "tcp":
        if state in _CLOSED:
            return "closed"
        if state in ("S0", None) and not d.get("packets_s2c"):
            return "new"
        return "established"
    return "established" if d.get("packets_s2c") else "new"


def _flow_id(d: dict[str, Any]) -> int:
    fid = d.get("flow_id")
    if isinstance(fid, int):
        return fid
    # No id (an audit record) or a text id (the monitor's): a stable number from what identifies it.
    key = f"{fid}|{d.get('community_id')}|{d.get('ts_start')}|{d.get('src_ip')}|{d.get('src_port')}"
    return zlib.crc32(key.encode()) | (zlib.adler32(key.encode()) << 32) & ((1 << 52) - 1)


def events(rec: FlowRecord | dict[str, Any], copy: bool = True) -> list[dict[str, Any]]:
    """The EVE events of one flow record: its alerts, then its flow event. With `copy=False` they
    share the record's `assigned` and `meta` (a writer that encodes them at once)."""
    d = rec.as_dict(copy=copy) if isinstance(rec, FlowRecord) else dict(rec)
    head: dict[str, Any] = {"flow_id": _flow_id(d)}
    if d.get("pcap"):
        head["pcap_filename"] = d["pcap"]
    tuple_ = {
        "src_ip": d["src_ip"], "src_port": d["src_port"], "dest_ip": d["dst_ip"], "dest_port": d["dst_port"],
        "proto": str(d["transport"]).upper(),
    }
    if d.get("community_id"):
        tuple_["community_id"] = d["community_id"]
    app = d.get("protocol") or "unknown"
    tuple_["app_proto"] = "failed" if app == "unknown" else app
    start, end = d["ts_start"], d["ts_end"]
    flow = {
        "pkts_toserver": d["packets_c2s"], "pkts_toclient": d["packets_s2c"],
        "bytes_toserver": d["bytes_c2s"], "bytes_toclient": d["bytes_s2c"],
        "start": timestamp(start), "end": timestamp(end),
        "age": max(0, int(end - start)) if end == end and start == start else 0,
        "state": flow_state(d), "alerted": bool(d.get("findings")),
    }
    out = []
    for f in d.get("findings") or ():
        out.append({
            "timestamp": timestamp(start), **head, "event_type": "alert", **tuple_,
            "alert": {
                "action": "allowed", "gid": 1, "signature_id": signature_id(f["kind"]), "rev": 1,
                "signature": f"PORTWATCH {f['kind']}: {f['message']}", "category": f["kind"],
                "severity": EVE_SEVERITY.get(f["severity"], 3),
                "metadata": {"portwatch_severity": [f["severity"]]},
            },
            "flow": flow,
        })
    extra = {k: d.get(k) for k in ("protocol", "assigned", "orientation", "confidence", "duration", "state",
                                   "history", "meta", "findings")}
    out.append({"timestamp": timestamp(start), **head, "event_type": "flow", **tuple_, "flow": flow,
                "portwatch": extra})
    return out


class EveWriter:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._write_bytes = getattr(stream, "write_bytes", None)  # a RecordFile (-o): bytes as they are

    def write(self, rec: FlowRecord) -> None:
        evs = events(rec, copy=False)
        if self._write_bytes is not None:
            lines = [encode_bytes(e) for e in evs]
            if None not in lines:
                self._write_bytes(b"".join(lines))  # type: ignore[arg-type]
                return
        self.stream.write("".join(encode_line(e) + "\n" for e in evs))

    def write_lines(self, data: bytes, records: int) -> None:
        """Flow events of records with no finding as the core wrote them (`core/src/eve_line.rs`:
        UTF-8, each ending in a newline)."""
        if self._write_bytes is not None:
            self._write_bytes(data, records)
        else:
            self.stream.write(data.decode())

    def close(self) -> None:
        self.stream.flush()


def from_event(obj: dict[str, Any]) -> dict[str, Any] | None:
    """A flow record from an EVE flow line portwatch wrote (None for other lines)."""
    if obj.get("event_type") != "flow" or not isinstance(obj.get("portwatch"), dict):
        return None
    pw, flow = obj["portwatch"], obj.get("flow") or {}

    def seconds(text: str) -> float:
        # ISO 8601 as `timestamp()` writes it; fromisoformat is 20 times faster than strptime.
        when = datetime.fromisoformat(text)
        if when.tzinfo is None:  # a time of no zone would be taken as this machine's
            raise ValueError(f"a time without its UTC offset: {text!r}")
        return when.timestamp()

    rec = {
        "flow_id": obj.get("flow_id"), "community_id": obj.get("community_id"), "pcap": obj.get("pcap_filename"),
        "ts_start": seconds(flow["start"]), "ts_end": seconds(flow["end"]), "transport": str(obj["proto"]).lower(),
        "src_ip": obj["src_ip"], "src_port": obj["src_port"], "dst_ip": obj["dest_ip"],
        "dst_port": obj["dest_port"], "packets_c2s": flow.get("pkts_toserver", 0),
        "packets_s2c": flow.get("pkts_toclient", 0), "bytes_c2s": flow.get("bytes_toserver", 0),
        "bytes_s2c": flow.get("bytes_toclient", 0),
    }
    rec.update(pw)
    return rec
