"""One near miss per shipped signature: bytes that look like the protocol but break the property the
signature checks (a length, a checksum, a magic, a direction, a version), which must not be named so.

The positives are on real bytes in test_signature_real_bytes.py and test_signature_corpus.py.
"""

from __future__ import annotations

import struct

import pytest
from _engine import classify

from portwatch.signatures import load_signatures


def crc_dnp(data: bytes) -> int:
    """DNP3's CRC-16 (IEEE 1815 link layer: polynomial 0x3D65, reflected, inverted)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA6BC if crc & 1 else crc >> 1
    return ~crc & 0xFFFF


def _dnp3(crc_ok: bool) -> bytes:
    head = b"\x05\x64\x05\xc9\x01\x00\x00\x04"
    crc = crc_dnp(head) ^ (0 if crc_ok else 1)
    return head + struct.pack("<H", crc)


_DNS_QUERY = bytes.fromhex("b37e00000001000000000000") + b"\x07printer\x00\x00\x01\x00\x01"

# protocol -> (transport, client bytes, server bytes, server port)
NEAR: dict[str, tuple[str, bytes, bytes, int]] = {
    "afp": ("tcp", b"\x00\x02\x00\x01" + bytes(4) + b"\x00\x00\x00\x02" + b"\x00\x00\x00\x01\x10\x00", b"",
            548),  # DSI's reserved word set
    "amqp": ("tcp", b"\x01\x00\x01\x00\x00\x00\x05hello\xcd", b"", 5672),  # frame-end must be 0xCE
    "bacnet": ("udp", b"\x81\x0a\x00\x20\x01\x04", b"", 47808),  # BVLC length != datagram length
    "bgp": ("tcp", b"\xff" * 15 + b"\xfe\x00\x13\x04", b"", 179),  # marker not all ones
    "bittorrent": ("tcp", b"\x13BitTorrent protocoX" + bytes(8), b"", 6881),
    "cassandra": ("tcp", b"\x04\x00\x00\x00\x09\x00\x00\x00\x00", b"", 9042),  # opcode 9 is not a first request
    "coap": ("udp", b"\x41\x01\x12\x34", b"", 5683),  # token length 1 but no token byte
    "dcerpc": ("tcp", b"\x06\x00\x0b\x03\x10\x00\x00\x00" + bytes(64), b"", 135),  # version 6
    "dhcp": ("udp", b"\x01\x01\x06\x00" + bytes(232) + b"\x63\x82\x53\x64" + b"\xff", b"", 67),  # bad cookie
    "dhcpv6": ("udp", b"\x01\x00\x00\x01\x00\x01\x00\x20\xaa", b"", 547),  # option overruns the datagram
    "diameter": ("tcp", b"\x02\x00\x00\x14\x80\x00\x01\x01" + bytes(12), b"", 3868),  # version 2
    "dns": ("udp", _DNS_QUERY[:2] + b"\x18\x00" + _DNS_QUERY[4:], b"", 53),  # opcode 3 is unassigned
    "dnp3": ("tcp", _dnp3(crc_ok=False), b"", 20000),  # header CRC off by one bit
    "dtls": ("udp", b"\x16\xfe\xfd\x00\x00" + bytes(6) + b"\x40\x00" + b"\x01" + bytes(20), b"", 443),  # length lies
    "elasticsearch": ("tcp", b"ES\x00\x00\x00\x20" + bytes(32) + b"XX", b"", 9300),  # next message lacks "ES"
    "finger": ("tcp", b"alice\r\n", b"", 7979),  # scoped to 79
    "ftp": ("tcp", b"", b"221 Goodbye.\r\n", 21),
    # only an FTP control connection's announcement names ftp-data, never bytes, even on its port 20
    "ftp-data": ("tcp", b"", b"-rw-r--r--    1 1001     1001           24 Dec 03 18:07 readme.txt\r\n", 20),
    "git": ("tcp", b"0045git-download-pack /project.git\x00host=x\x00", b"", 9418),
    "gtp": ("udp", b"\x48\x20\x00\x10" + bytes(16), b"", 2152),  # GTP-C only on 2123
    "h323": ("tcp", b"\x03\x00\x00\x10\x08\x02\x00\x01\x99" + bytes(7), b"", 1720),  # unknown Q.931 message
    "http": ("tcp", b"GET /index.html HTTP/3.0\r\nHost: x\r\n\r\n", b"", 80),
    "http2": ("tcp", b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", b"", 80),
    "iax": ("udp", b"\x80\x04\x00\x00\x00\x00\x00\x01\x00\x00\x06\x01", b"", 5060),  # scoped to 4569
    "ident": ("tcp", b"6191, 23 extra\r\n", b"", 113),
    "iec104": ("tcp", b"\x68\x04\x07\x00\x00\x01", b"", 2404),  # STARTDT with a non-zero tail
    "imap": ("tcp", b"", b"+ OK ready\r\n", 143),
    "ipsec": ("udp", bytes(8) + bytes(8) + b"\x21\x20\x22\x08" + bytes(4) + struct.pack("!I", 28), b"", 500),
    "irc": ("tcp", b"NICKNAME alice\r\n", b"", 6667),
    "kafka": ("tcp", struct.pack("!iHHih", 40, 900, 1, 7, 4) + b"cli\x01", b"", 9092),  # API key 900
    "kerberos": ("udp", b"\x6a\x81\x10\x30\x81\x0d\xa1\x03\x02\x01\x04\xa2\x03\x02\x01\x0a", b"", 88),  # pvno 4
    "ldap": ("tcp", b"\x30\x0c\x02\x01\x01\x65\x07\x0a\x01\x00\x04\x00\x04\x00", b"", 389),  # response from client
    "llmnr": ("udp", _DNS_QUERY[:4] + b"\x00\x02" + _DNS_QUERY[6:], b"", 5355),  # two questions
    "mdns": ("udp", b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", b"", 5353),  # no records at all
    "memcached": ("tcp", b"getaway now\r\n", b"", 11211),
    "mgcp": ("udp", b"CRCX 1204 card23/21@tgw.example.net MGCP 2.0\r\n", b"", 2427),
    "modbus": ("tcp", b"\x00\x01\x00\x01\x00\x06\x01\x03\x00\x00\x00\x01", b"", 502),  # protocol id 1
    "mongodb": ("tcp", struct.pack("<iiii", 40, 1, 0, 2099) + bytes(24), b"", 27017),  # unknown opcode
    "mqtt": ("tcp", b"\x10\x10\x00\x04MQTX\x04\x02\x00\x3c\x00\x04abcd", b"", 1883),
    "mssql": ("tcp", b"\x12\x01\x00\x2f\x00\x00\x01\x05" + bytes(39), b"", 1433),  # window byte != 0
    "munin": ("tcp", b"", b"# munin nodes at x\n", 4949),
    "mysql": ("tcp", b"", b"\x4a\x00\x00\x00\x09" + b"5.5.5\x00" + bytes(64), 3306),  # protocol 9
    "nats": ("tcp", b"CONNECT[]\r\n", b"", 4222),
    "netbios": ("udp", b"\x45\xfb\x01\x10\x00\x01\x00\x00\x00\x00\x00\x00\x20" + b"Z" * 32 + b"\x00\x00\x20\x00\x01",
                b"", 137),  # letters outside A-P
    "nfs": ("udp", b"\x5e\x1d\x0b\xdc\x00\x00\x00\x00\x00\x00\x00\x03\x00\x01\x86\xa3" + bytes(24), b"", 2049),
    "ldp": ("udp", b"\x00\x02\x00\x1e\x0a\x00\x00\x06\x00\x00\x01\x00\x00\x14", b"", 646),  # version 2
    "nntp": ("tcp", b"", b"2000 ready\r\n", 119),
    "ntp": ("udp", b"\x23\x11" + bytes(46), b"", 123),  # stratum 17
    "openvpn": ("udp", b"\x38" + bytes(8) + b"\x00\x00\x00\x00\x07", b"", 1194),  # packet id must be 0
    "oracle": ("tcp", b"\x00\xd4\x00\x00\x01\x00\x00\x00\x02\x3b\x01\x2c", b"", 1521),  # version 0x023b
    "pop3": ("tcp", b"", b"+OKAY\r\n", 110),
    "postgresql": ("tcp", b"\x00\x00\x00\x29\x00\x02\x00\x00user\x00alice\x00", b"", 5432),  # protocol 2
    "pptp": ("tcp", b"\x00\x9c\x00\x01\x1a\x2b\x3c\x4e", b"", 1723),  # magic off by one
    "ptp": ("udp", b"\x0c\x02\x00\x36" + bytes(50), b"", 1320),  # scoped to 319/320
    "quic": ("udp", b"\xc3\x12\x34\x56\x78\x08" + bytes(40), b"", 443),  # unknown version, no Initial
    "radius": ("udp", b"\x01\x07\x00\x1a" + bytes(16) + b"\x01\x07nemo", b"", 1812),  # attribute past the length
    "rdp": ("tcp", b"\x03\x00\x00\x13\x0e\xe0\x00\x00\x00\x00\x00\x07\x00\x08\x00\x03\x00\x00\x00", b"", 3389),
    "redis": ("tcp", b"*1\r\n$4\r\n4ING\r\n", b"", 6379),  # a command name starts with a letter
    "rsh": ("tcp", b"1022alice\x00bob\x00ls\x00", b"", 514),
    "rsync": ("tcp", b"@RSYNC: 31.0\n", b"", 873),
    "rtmp": ("tcp", b"\x06" + bytes(1536), b"", 1935),  # version 6 is RTMPE, not plain
    "rtcp": ("udp", b"\x81\xc8\x00\x06" + bytes(24) + b"x", b"", 5005),  # a stray byte, no SRTCP trailer
    "rtp": ("udp", b"\x80\x60\x00\x01" + bytes(8) + b"x" * 20, b"", 30000),  # one datagram only
    "rtsp": ("tcp", b"OPTIONS rtsp://cam.example.test/ HTTP/1.1\r\n", b"", 554),
    "s7comm": ("tcp", b"\x03\x00\x00\x19\x02\xf0\x80\x31\x01" + bytes(16), b"", 102),  # protocol id 0x31
    "sip": ("udp", b"INVITE sip:bob@example.test SIP/3.0\r\n", b"", 5060),
    # off 427 the header's length must be the datagram's: here one byte more
    "slp": ("udp", b"\x02\x01\x00\x00\x19\x00\x00\x00\x00\x00\x1d\x79\x00\x02en" + bytes(8), b"", 4270),
    "smb": ("tcp", b"\x00\x00\x00\x20\xfeSMB\x41\x00" + bytes(24), b"", 445),  # SMB2 header length 65
    "smpp": ("tcp", b"\x00\x00\x00\x28\x00\x00\x00\x02\x00\x00\x00\x05" + bytes(28), b"", 2775),  # status != 0
    "smtp": ("tcp", b"HELLO there\r\n", b"", 25),
    "snmp": ("udp", b"\x30\x1a\x02\x01\x07\x04\x06public\xa0\x0d" + bytes(13), b"", 161),  # version 7
    "socks": ("tcp", b"\x05\x03\x00\x01", b"", 1080),  # three methods announced, two sent
    "ssdp": ("udp", b"M-SEARCH * HTTP/2.0\r\n", b"", 1900),
    "ssh": ("tcp", b"SSH2.0-OpenSSH_9.2\r\n", b"", 22),
    "stomp": ("tcp", b"CONNECT\nACCEPT-VERSION:1.2\n", b"", 61613),  # header names are lowercase
    "stun": ("udp", b"\x00\x01\x00\x08\x21\x12\xa4\x42" + bytes(12) + b"\x00\x06\x00\x09abcd", b"", 3478),
    "syslog": ("udp", b"<192>Jan  1 00:00:00 host msg", b"", 514),  # PRI above 191
    "telnet": ("tcp", b"\xff\xf0\x01", b"", 23),  # SE is not a negotiation verb
    "teredo": ("udp", b"\x60\x00\x00\x00\x00\x10\x3a\xff" + bytes(32) + bytes(8), b"", 3544),  # payload length 16
    "tftp": ("udp", b"\x00\x01hello.txt\x00binary\x00", b"", 69),  # unknown transfer mode
    "tls": ("tcp", b"\x16\x03\x05\x00\x05\x01\x00\x00\x01\x00", b"", 443),  # record version 3.5
    "vnc": ("tcp", b"", b"RFB 3.8\n", 5900),
    "whois": ("tcp", b"example.com\r\n", b"", 4343),  # scoped to 43
    "wireguard": ("udp", b"\x01\x00\x00\x00" + bytes(4) + bytes(140), b"", 51820),  # sender index 0
    "x11": ("tcp", b"l\x00\x0b\x00\x01\x00\x12\x00\x10\x00\x00\x00", b"", 6000),  # version 11.1
    "xdmcp": ("udp", b"\x00\x02\x00\x02\x00\x01\x00", b"", 177),  # version 2
    "xmpp": ("tcp", b"<?xml version='1.0'?><stream:streams to='x'>", b"", 5222),
    "z3950": ("tcp", b"\xb4\x05\x84\x02\x00\xe0", b"", 210),
    "zabbix": ("tcp", b"ZBXD\x02" + bytes(8), b"", 10051),  # flags 2 is not defined
}  # fmt: skip


def test_every_signature_has_a_near_miss() -> None:
    assert {s.protocol for s in load_signatures()} <= set(NEAR)


@pytest.mark.parametrize("protocol", sorted(NEAR))
def test_near_miss_is_not_named(protocol: str) -> None:
    transport, client, server, port = NEAR[protocol]
    decision = classify(transport, [client] if client else [], [server] if server else [], port, client_port=40001)
    assert decision is not None
    assert decision.protocol != protocol, decision.evidence


def test_dnp3_near_miss_differs_only_in_its_crc() -> None:
    assert classify("tcp", [_dnp3(True)], [], 20000, client_port=40001).protocol == "dnp3"


def test_whois_answer_keyword_is_found_after_text_but_not_after_binary_or_past_the_depth() -> None:
    # A registry's answer may open with a long comment banner; the keyword must follow text only,
    # and begin within the match's first 618 bytes.
    banner = b"".join(b"%% comment line %03d of the registry's terms of use .....\r\n" % i for i in range(10))
    assert 560 < len(banner) < 600

    def named(answer: bytes) -> str | None:
        d = classify("tcp", [], [answer], 43, client_port=40001)
        return None if d is None else d.protocol

    assert named(banner + b"inetnum:        192.0.2.0 - 192.0.2.255\r\n") == "whois"
    assert named(banner[:-2] + b"\x00\r\ninetnum:        192.0.2.0\r\n") != "whois"
    assert named(banner + banner + b"inetnum:        192.0.2.0\r\n") != "whois"


def test_rtmp_digest_handshake_off_its_port_needs_both_sides() -> None:
    # Flash 9+: C0/S0 are the version 3, C1 carries the player's version where plain RTMP has
    # zeros, S1 is random. One side alone is a byte in 256 of any encrypted stream.
    c0c1 = b"\x03\x00\x00\x00\x00\x09\x00\x7c\x02" + bytes(range(256)) * 6
    s0s1 = b"\x03\x63\x50\x5f\xea\x01\x00\x05\x04" + bytes(range(255, -1, -1)) * 6

    def named(client: list[bytes], server: list[bytes], port: int) -> str:
        d = classify("tcp", client, server, port, client_port=40001)
        assert d is not None
        return d.protocol

    assert named([c0c1], [s0s1], 6200) == "rtmp"
    # On a port another signature owns (X11's 6002), both sides agreeing still count; one does not.
    assert named([c0c1], [s0s1], 6002) == "rtmp"
    assert named([], [s0s1], 6002) != "rtmp"
    assert named([], [s0s1], 443) != "rtmp"
    assert named([c0c1], [], 443) != "rtmp"
    assert named([], [s0s1], 1935) == "rtmp"  # on its own port, weak evidence alone is enough


def test_a_socks5_method_choice_alone_is_socks_only_on_1080() -> None:
    # RFC 1928 3: the server's choice is two bytes, 05 and a method; the tail of any stream picked
    # up in its middle can be that.
    def named(client: list[bytes], server: list[bytes], port: int) -> str:
        d = classify("tcp", client, server, port, client_port=40001)
        assert d is not None
        return d.protocol

    assert named([], [b"\x05\xe8"], 80) != "socks"
    assert named([], [b"\x05\x00"], 1080) == "socks"
    assert named([b"\x05\x01\x00"], [b"\x05\x00"], 8080) == "socks"
