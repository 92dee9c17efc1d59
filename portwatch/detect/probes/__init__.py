"""Structural parsers: bytes in, facts out, no I/O.

Each probe is `probe(data: bytes, from_client: bool) -> ProbeResult`, where `data` is the first
bytes of one direction (TCP: the reassembled prefix; UDP: one datagram). A signature names a probe
when a byte pattern cannot check the structure (record lengths, header fields, binary packets).

The contract, beyond the status and the metadata:
- `ProbeResult.done`: this direction's facts are complete (a whole ClientHello, a banner and its
  KEXINIT, HTTP headers up to the blank line); the pipeline then stops re-reading that direction.
  Say it only when later bytes can add nothing to the metadata.
- `probe.first_bytes` (optional attribute): every input the probe can MATCH starts with one of
  these bytes; the engine skips the probe for flows whose units all start otherwise. It must be a
  necessary condition: tests/detect/test_gates.py tries every first byte on real messages.
- `probe.units = True`: the probe takes the list of a direction's datagrams instead of one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ...model import NO_MATCH, ProbeResult

ProbeFn = Callable[[bytes, bool], ProbeResult]

# name -> "module:function". Modules are imported on first use so loading signatures stays cheap.
PROBES: dict[str, str] = {
    "tls": "tls:probe",
    "dtls": "dtls:probe",
    "ssh": "ssh:probe",
    "http": "http:probe",
    "dns": "dns:probe",
    "dns_tcp": "dns:probe_tcp",
    "quic": "quic:probe",
    # protocol coverage (issue 3)
    "quic_units": "quic:probe_units",
    "stun": "stun:probe",
    "rtp": "rtp:probe_units",
    "rtcp": "rtp:probe_rtcp",
    "utp": "bittorrent:probe_utp",
    "utp_units": "bittorrent:probe_utp_units",
    "amqp": "amqp:probe",
    "mqtt": "mqtt:probe",
    "mdns": "mdns:probe_mdns",
    "llmnr": "mdns:probe_llmnr",
    "netbios_ns": "netbios:probe_ns",
    "netbios_dgm": "netbios:probe_dgm",
    "netbios_ssn": "netbios:probe_ssn",
    "smb": "smb:probe",
    "smb_dgm": "smb:probe_dgm",
    "kerberos": "kerberos:probe",
    "kerberos_tcp": "kerberos:probe_tcp",
    "snmp": "snmp:probe",
    "ldap": "ldap:probe",
    "ntp": "ntp:probe",
    "dhcp": "dhcp:probe",
    "dhcpv6": "dhcp:probe_v6",
    "ike": "ipsec:probe",
    "esp_udp": "ipsec:probe_esp_units",
    "tds": "mssql:probe",
    "rdp": "rdp:probe",
    "h323": "h323:probe",
    "mysql": "mysql:probe",
    "oncrpc": "nfs:probe_call",
    "oncrpc_reply": "nfs:probe_reply",
    "oncrpc_tcp": "nfs:probe_tcp",
    "coap": "coap:probe",
    "bacnet": "bacnet:probe",
    "dnp3": "dnp3:probe",
    "iec104": "iec104:probe",
    "kafka": "kafka:probe",
    "mongodb": "mongodb:probe",
    "elasticsearch": "elasticsearch:probe",
    "teredo": "teredo:probe",
    "tftp": "tftp:probe_request",
    "tftp_transfer": "tftp:probe_transfer",
    "socks": "socks:probe",
    "openvpn": "openvpn:probe",
    "openvpn_tcp": "openvpn:probe_tcp",
    "wireguard": "wireguard:probe",
}


def guarded(parse: ProbeFn, max_input: int) -> ProbeFn:
    """The public probe of a parser: input cut to `max_input` bytes, and a parser bug on hostile
    bytes answers NO_MATCH instead of taking the pipeline down."""

    def probe(data: bytes, from_client: bool) -> ProbeResult:
        try:
            return parse(bytes(data[:max_input]), from_client)
        except Exception:
            return NO_MATCH

    probe.__doc__ = parse.__doc__
    return probe


def get_probe(name: str) -> ProbeFn:
    module, _, func = PROBES[name].partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), func)
