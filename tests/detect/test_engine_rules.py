"""Engine decisions through the core: evidence-based confidence, the documented ambiguity order, port
scoping, preludes, multi-datagram probes, and the conversation facts (STARTTLS, CONNECT tunnels,
WebSocket) the core adds to a flow's record."""

from __future__ import annotations

from pathlib import Path

from _engine import classify
from pcapkit import tcp_session

from portwatch.pipeline import Analyzer, Config

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "tests" / "data" / "real"
SSH_CLIENT = (ROOT / "tests" / "probes" / "data" / "ssh_client_openssh92.bin").read_bytes()
SSH_SERVER = (ROOT / "tests" / "probes" / "data" / "ssh_server_openssh92.bin").read_bytes()


def sig_dir(tmp_path: Path, **files: str) -> Path:
    """A user signature folder with `name.toml` files (added to the shipped set)."""
    folder = tmp_path / "sigs"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.toml").write_text(text)
    return folder


def test_confidence_grows_with_evidence_from_both_directions() -> None:
    one = classify("tcp", [SSH_CLIENT], [], 22)
    both = classify("tcp", [SSH_CLIENT], [SSH_SERVER], 22)
    assert one is not None and both is not None
    assert one.protocol == both.protocol == "ssh"
    assert both.confidence > one.confidence
    assert "client bytes" in both.evidence and "server bytes" in both.evidence


def test_weak_single_pattern_waits_for_more_then_settles_at_the_end(tmp_path: Path) -> None:
    dirs = [sig_dir(tmp_path, weak='protocol = "weak"\n[[match]]\nprefix = "ZQHI"\nconfidence = 0.5\n')]
    assert classify("tcp", [b"ZQHI there"], [], 1234, final=False, dirs=dirs) is None  # need more data
    final = classify("tcp", [b"ZQHI there"], [], 1234, dirs=dirs)
    assert final is not None and final.protocol == "weak" and final.confidence == 0.5


def test_ambiguity_is_resolved_by_order_not_by_file_order(tmp_path: Path) -> None:
    a = 'protocol = "aaa"\n[[match]]\nprefix = "ZQGO"\n'
    b = 'protocol = "bbb"\npriority = 5\n[[match]]\nprefix = "ZQGO"\n'
    for i, files in enumerate(({"f1": a, "f2": b}, {"f1": b, "f2": a})):  # either file first
        d = classify("tcp", [b"ZQGO! hello"], [], 9999, dirs=[sig_dir(tmp_path / str(i), **files)])
        assert d is not None and d.protocol == "bbb"  # equal score: priority decides
    c = 'protocol = "ccc"\nports = [9999]\n[[match]]\nprefix = "ZQGO"\n'
    dirs = [sig_dir(tmp_path / "c", ccc=c, aaa=a)]
    d = classify("tcp", [b"ZQGO! hello"], [], 9999, dirs=dirs)
    assert d is not None and d.protocol == "ccc"  # then the protocol's own port
    d = classify("tcp", [b"ZQGO! hello"], [], 80, dirs=dirs)
    assert d is not None and d.protocol == "aaa"  # then the name


def test_port_scoped_match_needs_the_port_and_the_payload() -> None:
    query = (REAL / "llmnr-query.bin").read_bytes()
    assert classify("udp", [query], [], 5355, client_port=50000).protocol == "llmnr"
    assert classify("udp", [query], [], 53, client_port=50000).protocol == "dns"
    # the port alone is nothing: random bytes to 5355 stay unknown
    assert classify("udp", [b"\x17" * 40], [], 5355, client_port=50000).protocol == "unknown"


def _stun_binding() -> bytes:
    return bytes.fromhex("000100002112a442") + bytes(range(12))


def _rtp(seq: int) -> bytes:
    header = bytes([0x80, 0x60]) + seq.to_bytes(2, "big") + (1000 + seq).to_bytes(4, "big") + b"\xaa\xbb\xcc\xdd"
    return header + b"x" * 40


def test_stun_is_a_prelude_and_media_names_the_flow() -> None:
    stun = _stun_binding()
    assert classify("udp", [stun], [], 3478, final=False) is None  # alone and not final: wait
    d = classify("udp", [stun], [], 3478)
    assert d is not None and d.protocol == "stun"
    d = classify("udp", [stun, _rtp(7), stun, _rtp(8)], [], 3478)
    assert d is not None and d.protocol == "rtp"  # RTP between ICE checks, sequence 7 -> 8


def test_rtp_needs_two_consistent_datagrams() -> None:
    d = classify("udp", [_rtp(1)], [], 30000)
    assert d is not None and d.protocol != "rtp"
    d = classify("udp", [_rtp(1), _rtp(900)], [], 30000)
    assert d is not None and d.protocol != "rtp"


def _flow(client: list[bytes], server: list[bytes], dport: int, server_first: bool = False):
    records = []
    analyzer = Analyzer(Config(), records.append)
    pkts = tcp_session(client, server, dport=dport, server_first=server_first)
    analyzer.run((1_700_000_000.0 + i * 0.01, 101, p) for i, p in enumerate(pkts))
    analyzer.close()
    (rec,) = records
    return rec


def test_starttls_and_cleartext_login() -> None:
    server = [b"220 mx.example.test ESMTP\r\n", b"250-mx\r\n250 STARTTLS\r\n", b"220 2.0.0 Ready to start TLS\r\n"]
    client = [b"EHLO client.example.test\r\n", b"STARTTLS\r\n", b"\x16\x03\x01\x00\x05hello"]
    rec = _flow(client, server, 25, server_first=True)
    assert rec.protocol == "smtp"
    assert {k: rec.meta.get(k) for k in ("banner", "smtp_helo", "upgraded_to")} == {
        "banner": "mx.example.test ESMTP", "smtp_helo": "client.example.test", "upgraded_to": "tls"}
    login = _flow([b"EHLO c\r\n", b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"], [b"220 mx ESMTP\r\n", b"250 mx\r\n"], 25,
                  server_first=True)
    assert login.meta["cleartext_login"] is True and "AGFsaWNl" not in repr(login.meta)
    anonymous = _flow([b"USER anonymous\r\n", b"PASS guest@\r\n"], [b"220 ftp ready\r\n", b"331 ok\r\n"], 21,
                      server_first=True)
    assert anonymous.protocol == "ftp" and "cleartext_login" not in anonymous.meta
    refused = _flow([b"EHLO c\r\n", b"STARTTLS\r\n"], [b"220 mx\r\n", b"250 mx\r\n", b"454 TLS not available\r\n"],
                    25, server_first=True)
    assert "upgraded_to" not in refused.meta


def test_connect_tunnel_names_the_protocol_inside() -> None:
    request = (REAL / "http-connect.bin").read_bytes()  # curl -p -x: CONNECT ssh.example.test:22
    reply = b"HTTP/1.1 200 Connection established\r\n\r\n"
    rec = _flow([request, SSH_CLIENT], [reply, SSH_SERVER], 3128)
    assert rec.protocol == "http"
    assert rec.meta["connect_target"] == "ssh.example.test:22" and rec.meta["tunnel_protocol"] == "ssh"
    denied = _flow([request], [b"HTTP/1.1 403 Forbidden\r\n\r\n"], 3128)
    assert "tunnel_protocol" not in denied.meta


def test_websocket_and_h2c_upgrades() -> None:
    switching = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    ws = _flow([(REAL / "http-websocket.bin").read_bytes()], [switching], 8080)
    assert ws.meta["upgraded_to"] == "websocket" and ws.meta["websocket"] is True
    h2c = _flow([(REAL / "http-h2c-upgrade.bin").read_bytes()],
                [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"], 8080)
    assert h2c.meta["upgraded_to"] == "http2"
    ignored = _flow([(REAL / "http-websocket.bin").read_bytes()], [b"HTTP/1.1 200 OK\r\n\r\n"], 8080)
    assert "upgraded_to" not in ignored.meta and "websocket" not in ignored.meta


def test_rtp_with_its_rtcp_report_on_the_same_port() -> None:
    ssrc = bytes.fromhex("207633fe")
    report = bytes.fromhex("81c8000e") + ssrc + bytes(52)  # sender report, 15 words
    media = bytes.fromhex("80f87d6200004600") + ssrc + bytes(60)
    d = classify("udp", [_stun_binding(), report, media], [], 3478)
    assert d is not None and d.protocol == "rtp"
    other = bytes.fromhex("81c8000e") + b"\x00\x00\x00\x01" + bytes(52)
    d = classify("udp", [_stun_binding(), other, media], [], 3478)
    assert d is not None and d.protocol == "stun"  # a report about another stream proves nothing


def test_udp_reply_seen_first_flips_the_roles() -> None:
    query = (REAL / "llmnr-query.bin").read_bytes()  # dig's query: flip QR to make it a reply
    reply = query[:2] + bytes([query[2] | 0x80]) + query[3:]
    d = classify("udp", [reply], [], 40000, client_port=53)
    assert d is not None and d.protocol == "dns" and d.swapped
    d = classify("udp", [query], [], 53, client_port=40000)
    assert d is not None and d.protocol == "dns" and not d.swapped
