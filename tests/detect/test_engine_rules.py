"""Engine decisions: evidence-based confidence, the documented ambiguity order, port scoping, preludes,
multi-datagram probes, and the upgrades module (STARTTLS, CONNECT tunnels, WebSocket)."""

from __future__ import annotations

from pathlib import Path

from portwatch.detect.engine import Engine
from portwatch.detect.signature import Signature, load_signatures, parse_signature
from portwatch.detect.upgrades import upgrade_meta

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "tests" / "data" / "real"
SSH_CLIENT = (ROOT / "tests" / "probes" / "data" / "ssh_client_openssh92.bin").read_bytes()
SSH_SERVER = (ROOT / "tests" / "probes" / "data" / "ssh_server_openssh92.bin").read_bytes()


def sig(text: str, name: str = "x.toml") -> Signature:
    return parse_signature(text, name, "user")


def test_confidence_grows_with_evidence_from_both_directions() -> None:
    engine = Engine(load_signatures())
    one = engine.classify("tcp", [SSH_CLIENT], [], 22, final=True)
    both = engine.classify("tcp", [SSH_CLIENT], [SSH_SERVER], 22, final=True)
    assert one is not None and both is not None
    assert one.protocol == both.protocol == "ssh"
    assert both.confidence > one.confidence
    assert "client bytes" in both.evidence and "server bytes" in both.evidence


def test_weak_single_pattern_waits_for_more_then_settles_at_the_end() -> None:
    weak = sig('protocol = "weak"\n[[match]]\nprefix = "HI"\nconfidence = 0.5\n')
    engine = Engine([weak])
    assert engine.classify("tcp", [b"HI there"], [], 1234) is None  # need more data
    final = engine.classify("tcp", [b"HI there"], [], 1234, final=True)
    assert final is not None and final.protocol == "weak" and final.confidence == 0.5


def test_ambiguity_is_resolved_by_order_not_by_file_order() -> None:
    a = sig('protocol = "aaa"\n[[match]]\nprefix = "GO"\n')
    b = sig('protocol = "bbb"\npriority = 5\n[[match]]\nprefix = "GO"\n')
    for order in ([a, b], [b, a]):
        d = Engine(order).classify("tcp", [b"GO!"], [], 9999, final=True)
        assert d is not None and d.protocol == "bbb"  # equal score: priority decides
    c = sig('protocol = "ccc"\nports = [9999]\n[[match]]\nprefix = "GO"\n')
    d = Engine([c, a]).classify("tcp", [b"GO!"], [], 9999, final=True)
    assert d is not None and d.protocol == "ccc"  # then the protocol's own port
    d = Engine([c, a]).classify("tcp", [b"GO!"], [], 80, final=True)
    assert d is not None and d.protocol == "aaa"  # then the name


def test_port_scoped_match_needs_the_port_and_the_payload() -> None:
    engine = Engine(load_signatures())
    query = (REAL / "llmnr-query.bin").read_bytes()
    assert engine.classify("udp", [query], [], 5355, final=True, client_port=50000).protocol == "llmnr"
    assert engine.classify("udp", [query], [], 53, final=True, client_port=50000).protocol == "dns"
    # the port alone is nothing: random bytes to 5355 stay unknown
    assert engine.classify("udp", [b"\x17" * 40], [], 5355, final=True, client_port=50000).protocol == "unknown"


def _stun_binding() -> bytes:
    return bytes.fromhex("000100002112a442") + bytes(range(12))


def _rtp(seq: int) -> bytes:
    header = bytes([0x80, 0x60]) + seq.to_bytes(2, "big") + (1000 + seq).to_bytes(4, "big") + b"\xaa\xbb\xcc\xdd"
    return header + b"x" * 40


def test_stun_is_a_prelude_and_media_names_the_flow() -> None:
    engine = Engine(load_signatures())
    stun = _stun_binding()
    assert engine.classify("udp", [stun], [], 3478) is None  # alone and not final: wait
    d = engine.classify("udp", [stun], [], 3478, final=True)
    assert d is not None and d.protocol == "stun"
    d = engine.classify("udp", [stun, _rtp(7), stun, _rtp(8)], [], 3478, final=True)
    assert d is not None and d.protocol == "rtp"  # RTP between ICE checks, sequence 7 -> 8


def test_rtp_needs_two_consistent_datagrams() -> None:
    engine = Engine(load_signatures())
    d = engine.classify("udp", [_rtp(1)], [], 30000, final=True)
    assert d is not None and d.protocol != "rtp"
    jump = _rtp(1), _rtp(900)
    d = engine.classify("udp", list(jump), [], 30000, final=True)
    assert d is not None and d.protocol != "rtp"


def test_starttls_and_cleartext_login() -> None:
    client = b"EHLO client.example.test\r\nSTARTTLS\r\n\x16\x03\x01\x00\x05hello"
    server = b"220 mx.example.test ESMTP\r\n250-mx\r\n250 STARTTLS\r\n220 2.0.0 Ready to start TLS\r\n"
    meta = upgrade_meta("smtp", [client], [server])
    assert meta == {"banner": "mx.example.test ESMTP", "smtp_helo": "client.example.test", "upgraded_to": "tls"}
    login = upgrade_meta("smtp", [b"EHLO c\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"], [b"220 mx ESMTP\r\n"])
    assert login["cleartext_login"] is True and "AGFsaWNl" not in repr(login)
    anonymous = upgrade_meta("ftp", [b"USER anonymous\r\nPASS guest@\r\n"], [b"220 ftp ready\r\n"])
    assert "cleartext_login" not in anonymous
    refused = upgrade_meta("smtp", [b"EHLO c\r\nSTARTTLS\r\n"], [b"220 mx\r\n250 mx\r\n454 TLS not available\r\n"])
    assert "upgraded_to" not in refused


def test_connect_tunnel_names_the_protocol_inside() -> None:
    engine = Engine(load_signatures())
    request = (REAL / "http-connect.bin").read_bytes()  # curl -p -x: CONNECT ssh.example.test:22
    reply = b"HTTP/1.1 200 Connection established\r\n\r\n"
    meta = upgrade_meta("http", [request + SSH_CLIENT], [reply + SSH_SERVER], engine.inner_protocol)
    assert meta == {"connect_target": "ssh.example.test:22", "tunnel_protocol": "ssh"}
    denied = upgrade_meta("http", [request], [b"HTTP/1.1 403 Forbidden\r\n\r\n"], engine.inner_protocol)
    assert "tunnel_protocol" not in denied


def test_websocket_and_h2c_upgrades() -> None:
    switching = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    ws = upgrade_meta("http", [(REAL / "http-websocket.bin").read_bytes()], [switching])
    assert ws == {"upgraded_to": "websocket", "websocket": True}
    h2c = upgrade_meta(
        "http",
        [(REAL / "http-h2c-upgrade.bin").read_bytes()],
        [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"],
    )
    assert h2c == {"upgraded_to": "http2"}
    ignored = upgrade_meta("http", [(REAL / "http-websocket.bin").read_bytes()], [b"HTTP/1.1 200 OK\r\n\r\n"])
    assert ignored == {}


def test_rtp_with_its_rtcp_report_on_the_same_port() -> None:
    engine = Engine(load_signatures())
    ssrc = bytes.fromhex("207633fe")
    report = bytes.fromhex("81c8000e") + ssrc + bytes(52)  # sender report, 15 words
    media = bytes.fromhex("80f87d6200004600") + ssrc + bytes(60)
    d = engine.classify("udp", [_stun_binding(), report, media], [], 3478, final=True)
    assert d is not None and d.protocol == "rtp"
    other = bytes.fromhex("81c8000e") + b"\x00\x00\x00\x01" + bytes(52)
    d = engine.classify("udp", [_stun_binding(), other, media], [], 3478, final=True)
    assert d is not None and d.protocol == "stun"  # a report about another stream proves nothing


def test_udp_reply_seen_first_flips_the_roles() -> None:
    engine = Engine(load_signatures())
    query = (REAL / "llmnr-query.bin").read_bytes()  # dig's query: flip QR to make it a reply
    reply = query[:2] + bytes([query[2] | 0x80]) + query[3:]
    d = engine.classify("udp", [reply], [], 40000, final=True, client_port=53)
    assert d is not None and d.protocol == "dns" and d.swapped
    d = engine.classify("udp", [query], [], 53, final=True, client_port=40000)
    assert d is not None and d.protocol == "dns" and not d.swapped
