"""QUIC from a real HTTP/3 server and client (aioquic; captures/quic-443.pcap), on 443 and moved off it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import dpkt
import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "quic-443.pcap"


def udp_packets_per_pair(path: Path) -> Counter[frozenset[int]]:
    """dpkt's count of the capture's UDP datagrams per client port (the oracle for the flows)."""
    counts: Counter[frozenset[int]] = Counter()
    with path.open("rb") as fh:
        for _, buf in dpkt.pcap.Reader(fh):
            ip = dpkt.ethernet.Ethernet(buf).data
            if isinstance(ip.data, dpkt.udp.UDP):
                counts[frozenset((ip.data.sport, ip.data.dport))] += 1
    return counts


def test_http3_connections_are_quic_with_the_hello_decrypted() -> None:
    records, _ = analyze_path(CAPTURE)
    assert sorted(r.dst_ip for r in records) == ["10.77.0.1", "fd77::1"]
    for r in records:
        assert (r.protocol, r.transport, r.dst_port) == ("quic", "udp", 443)
        # The client Initial's CRYPTO frames, decrypted with the keys its Destination Connection ID gives.
        assert r.meta["quic_version"] == "1" and r.meta["quic_decrypted"] is True
        assert r.meta["sni"] == "quic.example.test" and r.meta["alpn"] == ["h3"]
        assert r.meta["tls_version"] == "1.3"
        # JA4 of a QUIC hello: q, TLS 1.3, an SNI domain, ..., the ALPN's first and last characters.
        assert r.meta["ja4"].startswith("q13d") and r.meta["ja4"][8:10] == "h3"
        # 443/udp is https in /etc/services, and QUIC is how HTTPS runs over UDP: nothing to say.
        assert r.findings == []
    # One client stack: one fingerprint.
    assert len({r.meta["ja4"] for r in records}) == 1
    counts = udp_packets_per_pair(CAPTURE)
    assert sorted(r.packets_c2s + r.packets_s2c for r in records) == sorted(counts.values())


def test_the_same_connection_moved_off_443_is_still_quic(tmp_path: Path) -> None:
    # The IPv4 connection's datagrams with 443 rewritten to 4433 (unassigned in /etc/services): the
    # bytes name QUIC, and an encrypted protocol on an unassigned high port gets only the
    # inventory note.
    moved = tmp_path / "quic-4433.pcap"
    with CAPTURE.open("rb") as fh, moved.open("wb") as out:
        reader = dpkt.pcap.Reader(fh)
        writer = dpkt.pcap.Writer(out, linktype=reader.datalink())
        for ts, buf in reader:
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            if not isinstance(ip, dpkt.ip.IP):
                continue
            udp = ip.data
            udp.sport, udp.dport = (4433 if p == 443 else p for p in (udp.sport, udp.dport))
            udp.sum = 0  # no checksum (allowed over IPv4)
            ip.sum = 0
            writer.writepkt(bytes(eth), ts)
    (rec,) = analyze_path(moved)[0]
    assert (rec.protocol, rec.dst_port, rec.meta["sni"]) == ("quic", 4433, "quic.example.test")
    assert [(f.kind, f.severity) for f in rec.findings] == [("unassigned-port", "info")]
