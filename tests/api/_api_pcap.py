"""Write small classic-pcap files of whole TCP sessions and UDP exchanges (Ethernet/IPv4), no scapy,
and `build_mixed`: SSH on 443 with a hostile banner, HTTP on 80 and on 22, a DNS query over UDP, and
random bytes to an unassigned port."""

from __future__ import annotations

import random
import socket
import struct
from pathlib import Path

SYN, FIN, ACK, PSH = 0x02, 0x01, 0x10, 0x08


def _ipv4(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, 64, proto, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    return header + payload


def _ether(ip: bytes) -> bytes:
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip


def _tcp(sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload


def _udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


class PcapBuilder:
    def __init__(self, start: float = 1_790_000_000.25) -> None:
        self.ts = start
        self.frames: list[tuple[float, bytes]] = []

    def _add(self, frame: bytes, step: float = 0.001) -> None:
        self.ts += step
        self.frames.append((self.ts, frame))

    def tcp_session(self, client: tuple[str, int], server: tuple[str, int], exchange: list[tuple[str, bytes]]) -> None:
        """Handshake, then each (side, bytes) in order ('c' client, 's' server), then FIN both ways."""
        (cip, cport), (sip, sport) = client, server
        cseq, sseq = 1000, 5000

        def c(flags: int, data: bytes = b"") -> None:
            self._add(_ether(_ipv4(cip, sip, 6, _tcp(cport, sport, cseq, sseq, flags, data))))

        def s(flags: int, data: bytes = b"") -> None:
            self._add(_ether(_ipv4(sip, cip, 6, _tcp(sport, cport, sseq, cseq, flags, data))))

        c(SYN)
        cseq += 1
        s(SYN | ACK)
        sseq += 1
        c(ACK)
        for side, data in exchange:
            if side == "c":
                c(PSH | ACK, data)
                cseq += len(data)
            else:
                s(PSH | ACK, data)
                sseq += len(data)
        c(FIN | ACK)
        cseq += 1
        s(FIN | ACK)
        sseq += 1
        c(ACK)

    def udp_exchange(self, client: tuple[str, int], server: tuple[str, int], exchange: list[tuple[str, bytes]]) -> None:
        (cip, cport), (sip, sport) = client, server
        for side, data in exchange:
            if side == "c":
                self._add(_ether(_ipv4(cip, sip, 17, _udp(cport, sport, data))))
            else:
                self._add(_ether(_ipv4(sip, cip, 17, _udp(sport, cport, data))))

    def pause(self, seconds: float) -> None:
        self.ts += seconds

    def write(self, path: Path) -> Path:
        with open(path, "wb") as fh:
            fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            for ts, frame in self.frames:
                sec = int(ts)
                usec = round((ts - sec) * 1e6)
                fh.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
        return path


HOSTILE_BANNER = b"SSH-2.0-OpenSSH_9.2 <script>alert(1)</script>\x1b[31mred\x1b]0;pwned\x07"
CLIENT, SERVER = "10.9.0.2", "10.9.0.1"


def _dns_query(name: str, qid: int = 0x1234) -> bytes:
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)


def _dns_answer(name: str, qid: int = 0x1234) -> bytes:
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([10, 9, 0, 7])
    return struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + qname + struct.pack("!HH", 1, 1) + answer


def build_mixed(path: Path) -> Path:
    rng = random.Random(7)
    b = PcapBuilder()
    b.tcp_session((CLIENT, 50001), (SERVER, 443), [
        ("s", HOSTILE_BANNER + b"\r\n"),
        ("c", b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"),
        ("c", rng.randbytes(600)),
        ("s", rng.randbytes(900)),
    ])
    b.pause(30)
    b.tcp_session((CLIENT, 50002), (SERVER, 80), [
        ("c", b"GET /index.html HTTP/1.1\r\nHost: intranet.example\r\nUser-Agent: curl/7.88.1\r\n\r\n"),
        ("s", b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 5\r\n\r\nhello"),
    ])
    b.pause(30)
    b.tcp_session((CLIENT, 50003), (SERVER, 22), [
        ("c", b"GET / HTTP/1.1\r\nHost: =cmd|' /C calc'!A0\r\n\r\n"),
        ("s", b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
    ])
    b.pause(5)
    b.udp_exchange((CLIENT, 40000), (SERVER, 53), [("c", _dns_query("www.example.org")),
                                                   ("s", _dns_answer("www.example.org"))])
    b.pause(60)
    b.tcp_session((CLIENT, 50004), (SERVER, 4444), [("c", rng.randbytes(700)), ("s", rng.randbytes(800))])
    return b.write(path)
