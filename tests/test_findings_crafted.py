"""Finding kinds no Debian daemon produces on demand, through the whole pipeline on crafted packets.

Obfuscated proxies (random bytes from the first packet), TCP overlap evasion, DNS tunnels split
over many client sockets (dns2tcp style), an HTTP proxy relaying CONNECT to SSH, chargen.
"""

from __future__ import annotations

import base64
import random
from pathlib import Path

from pcapkit import CLIENT, SERVER, analyze_path, ether, tcp_session, timed, udp_exchange, write_pcap
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, TCP

from portwatch import _core
from portwatch.model import SEVERITY_RANK
from portwatch.services import fallback_path

SERVICES = str(fallback_path())


def cipher_bytes(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    while True:
        data = bytes(rng.getrandbits(8) for _ in range(n))
        if _core.entropy_facts(data)["looks_encrypted"] and not 0x14 <= data[0] <= 0x18:
            return data


def run(tmp_path: Path, packets: list[bytes], name: str = "t.pcap") -> list:
    path = write_pcap(tmp_path / name, timed([ether(p) for p in packets]))
    records, _ = analyze_path(path, services_path=SERVICES)
    return records


def worst(records: list) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in records:
        for f in r.findings:
            if f.kind not in out or SEVERITY_RANK[f.severity] > SEVERITY_RANK[out[f.kind]]:
                out[f.kind] = f.severity
    return out


def test_random_bytes_from_the_first_packet_are_encrypted_unknown(tmp_path: Path) -> None:
    pkts = tcp_session([cipher_bytes(700, 1), cipher_bytes(300, 2)], [cipher_bytes(500, 3)], dport=8388)
    records = run(tmp_path, pkts)
    assert len(records) == 1 and records[0].protocol == "unknown"
    assert worst(records) == {"encrypted-unknown": "medium", "unassigned-port": "info"}
    msg = next(f.message for f in records[0].findings if f.kind == "encrypted-unknown")
    assert "10.1.0.1:8388" in msg and "8388/tcp (unassigned in /etc/services)" in msg
    assert "bits/byte over" in msg and "popcount" in msg and "no GFW exemption" in msg


def test_random_bytes_on_443_where_tls_was_expected_are_high(tmp_path: Path) -> None:
    pkts = tcp_session([cipher_bytes(700, 4)], [cipher_bytes(400, 5)], dport=443)
    assert worst(run(tmp_path, pkts)) == {"encrypted-unknown": "high"}


def test_overlapping_segments_with_different_bytes_are_a_stream_anomaly(tmp_path: Path) -> None:
    c2s, s2c = IP(src=CLIENT, dst=SERVER), IP(src=SERVER, dst=CLIENT)
    pkts = [bytes(c2s / TCP(sport=40000, dport=80, flags="S", seq=999)),
            bytes(s2c / TCP(sport=80, dport=40000, flags="SA", seq=4999, ack=1000)),
            bytes(c2s / TCP(sport=40000, dport=80, flags="A", seq=1000, ack=5000)),
            bytes(c2s / TCP(sport=40000, dport=80, flags="PA", seq=1000, ack=5000) / b"GET /index.html HTTP/1.1\r\n"),
            # the same bytes again, but "index" replaced: an insertion attempt
            bytes(c2s / TCP(sport=40000, dport=80, flags="PA", seq=1000, ack=5000) / b"GET /evil!.html HTTP/1.1\r\n"),
            bytes(c2s / TCP(sport=40000, dport=80, flags="PA", seq=1026, ack=5000) / b"Host: x\r\n\r\n"),
            bytes(s2c / TCP(sport=80, dport=40000, flags="PA", seq=5000, ack=1037) / b"HTTP/1.1 200 OK\r\n\r\n"),
            # a keep-alive probe: one garbage octet below the next sequence number, no anomaly
            bytes(c2s / TCP(sport=40000, dport=80, flags="A", seq=1036, ack=5019) / b"\x00")]
    records = run(tmp_path, pkts)
    assert worst(records) == {"stream-anomaly": "medium"}
    assert "1 overlapping TCP segment(s)" in records[0].findings[0].message


def test_dns_tunnel_spread_over_many_client_sockets(tmp_path: Path) -> None:
    rng = random.Random(9)
    pkts = []
    for i in range(30):
        label = base64.b32encode(rng.randbytes(30)).decode().rstrip("=").lower()  # 48 characters
        query = bytes(DNS(id=i, rd=1, qd=DNSQR(qname=f"{label}.d.tunnel-example.net", qtype="TXT")))
        pkts += udp_exchange([(True, query)], sport=30000 + i, dport=53)
    records = run(tmp_path, pkts)
    assert len(records) == 30
    sev = [max((SEVERITY_RANK[f.severity] for f in r.findings if f.kind == "dns-tunnel"), default=-1)
           for r in sorted(records, key=lambda r: r.ts_start)]
    assert sev[0] == SEVERITY_RANK["low"] and sev[-1] == SEVERITY_RANK["high"]
    msg = next(f.message for f in records[-1].findings if f.kind == "dns-tunnel")
    assert "tunnel-example.net" in msg and "unique names" in msg


def test_http_proxy_connect_to_ssh_is_a_tunnel(tmp_path: Path) -> None:
    pkts = tcp_session([b"CONNECT 203.0.113.9:22 HTTP/1.1\r\nHost: 203.0.113.9:22\r\n\r\n", b"SSH-2.0-OpenSSH_9.2\r\n"],
                       [b"HTTP/1.1 200 Connection established\r\n\r\n"], dport=3128)
    records = run(tmp_path, pkts)
    assert worst(records)["tunnel"] == "high"
    assert any("203.0.113.9:22" in f.message for f in records[0].findings)


def test_chargen_answering_is_insecure(tmp_path: Path) -> None:
    line = bytes(range(0x21, 0x7F))[:72] + b"\r\n"
    pkts = tcp_session([], [line, line[1:] + line[:1]], dport=19, server_first=True)
    records = run(tmp_path, pkts)
    assert worst(records) == {"insecure-protocol": "medium"}
    assert "chargen" in records[0].findings[0].message
