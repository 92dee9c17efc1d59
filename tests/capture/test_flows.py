"""The core's flow table and reassembly through the pipeline: roles, mid-stream inference, closing, expiry, the cap."""

from __future__ import annotations

from pcapkit import CLIENT, SERVER, tcp_session, udp_exchange
from scapy.layers.inet import IP, TCP

from portwatch.pipeline import Analyzer, Config

LINKTYPE_RAW = 101
BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"
CLIENT_BANNER = b"SSH-2.0-OpenSSH_9.6\r\n"


def feed(packets, start=1_700_000_000.0, step=0.01, **cfg):
    out = []
    analyzer = Analyzer(Config(**cfg), on_record=out.append)
    analyzer.run((start + i * step, LINKTYPE_RAW, p) for i, p in enumerate(packets))
    stats = analyzer.close()
    return out, stats, analyzer


def test_handshake_fixes_client_and_server():
    (rec,), _, _ = feed(tcp_session([CLIENT_BANNER], [BANNER], sport=40001, dport=443, server_first=True))
    assert (rec.src_ip, rec.src_port, rec.dst_ip, rec.dst_port) == (CLIENT, 40001, SERVER, 443)
    assert rec.orientation == "handshake"
    assert rec.protocol == "ssh"
    assert rec.packets_c2s == 5 and rec.packets_s2c == 3
    assert rec.bytes_c2s == len(CLIENT_BANNER) and rec.bytes_s2c == len(BANNER)
    assert rec.meta["ssh_server"].startswith("SSH-2.0-OpenSSH_9.2p1")


def test_syn_ack_seen_first_still_orients():
    pkts = tcp_session([CLIENT_BANNER], [BANNER], sport=40002, dport=2222, server_first=True)
    (rec,), _, _ = feed(pkts[1:])  # the SYN was missed
    assert (rec.src_port, rec.dst_port) == (40002, 2222)
    assert rec.orientation == "handshake"


def test_mid_stream_server_banner_decides_roles():
    # Capture starts after the handshake with the server's banner, on two unassigned ports where
    # the lower port is the client's: only the server-first banner can tell the roles.
    pkts = tcp_session([CLIENT_BANNER], [BANNER], sport=3000, dport=40003, server_first=True)
    (rec,), _, _ = feed(pkts[3:])
    assert rec.orientation == "inferred"
    assert rec.protocol == "ssh"


def test_mid_stream_uses_services_database():
    pkts = tcp_session([b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n"], [b"HTTP/1.1 200 OK\r\n\r\n"],
                       sport=55000, dport=80)
    s2c_first = [pkts[4], pkts[3], *pkts[5:]]  # first packet seen goes server -> client
    (rec,), _, _ = feed(s2c_first)
    assert rec.orientation == "inferred"
    assert (rec.src_port, rec.dst_port) == (55000, 80)
    assert rec.protocol == "http"
    assert rec.meta["http_host"] == "a.example"


def test_udp_first_datagram_sender_is_client():
    from scapy.layers.dns import DNS, DNSQR

    q = bytes(DNS(id=1, rd=1, qd=DNSQR(qname="www.example.com")))
    r = bytes(DNS(id=1, qr=1, qd=DNSQR(qname="www.example.com")))
    (rec,), _, _ = feed(udp_exchange([(True, q), (False, r)], sport=50000, dport=53))
    assert (rec.src_port, rec.dst_port, rec.transport) == (50000, 53, "udp")
    assert rec.protocol == "dns" and rec.meta["dns_query"].rstrip(".") == "www.example.com"


def test_port_reuse_after_close_is_a_new_flow():
    first = tcp_session([CLIENT_BANNER], [BANNER], sport=40004, dport=22, server_first=True)
    second = tcp_session([b"GET / HTTP/1.1\r\n\r\n"], [b"HTTP/1.1 200 OK\r\n\r\n"], sport=40004, dport=22)
    recs, _, _ = feed(first + second, step=0.1)
    assert [r.protocol for r in recs] == ["ssh", "http"]


def test_rst_closes_and_late_packets_do_not_make_new_flows():
    pkts = tcp_session([CLIENT_BANNER], [BANNER], sport=40005, dport=22, server_first=True)[:5]
    rst = bytes(IP(src=SERVER, dst=CLIENT) / TCP(sport=22, dport=40005, flags="R", seq=1))
    late_ack = bytes(IP(src=CLIENT, dst=SERVER) / TCP(sport=40005, dport=22, flags="A", seq=9, ack=9))
    recs, _, _ = feed([*pkts, rst, late_ack])
    assert len(recs) == 1 and recs[0].packets_c2s == 4


def test_idle_flows_expire_during_the_capture():
    a = tcp_session([CLIENT_BANNER], [BANNER], sport=40006, dport=22, server_first=True)[:4]
    b = tcp_session([CLIENT_BANNER], [BANNER], sport=40007, dport=22, server_first=True)
    out = []
    analyzer = Analyzer(Config(idle_tcp=30, sweep_interval=1), on_record=out.append)
    analyzer.run((1000.0 + i, LINKTYPE_RAW, p) for i, p in enumerate(a))
    analyzer.run((2000.0 + i, LINKTYPE_RAW, p) for i, p in enumerate(b))
    assert len(out) == 1 and out[0].src_port == 40006  # expired before the end of the capture
    assert out[0].meta["end_reason"] == "idle"
    analyzer.close()
    assert len(out) == 2


def test_flow_cap_evicts_oldest_and_counts():
    pkts = []
    for i in range(50):
        pkts.append(bytes(IP(src=CLIENT, dst=SERVER) / TCP(sport=20000 + i, dport=443, flags="S")))
    recs, stats, analyzer = feed(pkts, max_flows=16)
    assert stats.flows_evicted == 34
    assert len(recs) == 50
    assert [r.src_port for r in recs[:34]] == list(range(20000, 20034))
    assert all(r.meta.get("evicted") for r in recs[:34])
    assert analyzer.live_flows == 0


def test_unknown_random_bytes_look_encrypted():
    import random

    rnd = random.Random(7)
    blob = bytes(rnd.getrandbits(8) for _ in range(600))
    (rec,), _, _ = feed(tcp_session([blob], [bytes(rnd.getrandbits(8) for _ in range(300))], dport=8443))
    assert rec.protocol == "unknown"
    assert rec.meta["entropy_client"]["looks_encrypted"] is True
    assert any(f.kind == "encrypted-unknown" for f in rec.findings)


def test_reassembly_in_sequence_order_first_copy_wins():
    # Segments out of order, one byte at a time in reverse, and an overlap that rewrites held bytes:
    # detection reads the stream in sequence order with the first copy of every byte.
    def seg(seq: int, data: bytes) -> bytes:
        return bytes(IP(src=CLIENT, dst=SERVER) / TCP(sport=40008, dport=5555, flags="PA", seq=seq) / data)

    syn = bytes(IP(src=CLIENT, dst=SERVER) / TCP(sport=40008, dport=5555, flags="S", seq=1000))
    text = b"SSH-2.0-OpenSSH_9.2\r\n"
    pkts = [syn, *(seg(1001 + i, text[i : i + 1]) for i in reversed(range(len(text))))]
    (rec,), _, _ = feed(pkts)
    assert rec.protocol == "ssh" and bytes.fromhex(rec.meta["client_head"]) == text
    pkts = [syn, seg(1001, b"GET /index"), seg(1005, b"XXXXXX.html HTTP/1.1\r\n\r\n")]
    (rec,), _, _ = feed(pkts)
    assert bytes.fromhex(rec.meta["client_head"]).startswith(b"GET /index.html")
    assert rec.meta["tcp_overlap_conflicts"] == 1


def test_sequence_wrap_around():
    isn = 0xFFFFFFF0

    def seg(off: int, data: bytes) -> bytes:
        return bytes(IP(src=CLIENT, dst=SERVER) / TCP(sport=40009, dport=5555, flags="PA",
                                                      seq=(isn + off) & 0xFFFFFFFF) / data)

    syn = bytes(IP(src=CLIENT, dst=SERVER) / TCP(sport=40009, dport=5555, flags="S", seq=isn))
    (rec,), _, _ = feed([syn, seg(1, b"A" * 10), seg(11, b"B" * 10), seg(21, b"CCCC")])  # crosses 2**32
    assert bytes.fromhex(rec.meta["client_head"]) == b"A" * 10 + b"B" * 10 + b"CCCC"
