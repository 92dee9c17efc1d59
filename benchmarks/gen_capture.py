#!/usr/bin/env python3
"""Deterministic generator of large, realistic classic-pcap captures for benchmarks.

    python benchmarks/gen_capture.py --packets 2000000 --seed 1 \
        -o benchmarks/data/mix-2m.pcap --truth benchmarks/data/mix-2m.truth.csv

What it writes (Ethernet, IPv4 and ~10% IPv6, addresses from the documentation and
benchmarking ranges 10/8, 198.18/15 and 2001:db8::/32):

* TLS 1.3 on 443: Chrome-like ClientHello with SNI/ALPN/key_share, ServerHello + CCS +
  certificate-sized encrypted records, then application-data records (16 KiB records cut
  into MSS-sized segments).
* HTTP/1.1 on 80: GET with Host and User-Agent, ``200 OK`` with Content-Length and body,
  keep-alive with 1..4 requests per connection.
* SSH on 22: banners, real KEXINIT name-lists, curve25519 ECDH, NEWKEYS, then
  encrypted-sized packets (interactive keystrokes or bulk scp).
* SMTP on 25: 220 banner, EHLO, MAIL/RCPT/DATA with a base64 body, QUIT.
* DNS on 53/udp: A/AAAA queries for random names and their answers.
* A few percent of port misuse: SSH on 443 and TLS on 22.

TCP flows have a SYN/SYN-ACK/ACK handshake with options, consistent sequence and
acknowledgement numbers, TCP timestamps, delayed ACKs, PSH on the last segment of each
message and a FIN/FIN/ACK teardown. IPv4 header checksums are correct; TCP/UDP checksums
are zero (as seen with checksum offload). ``--concurrent`` flows are kept open at once
and interleaved at random; long transfers send in bursts. Flows still open when the
packet budget is reached are cut (``complete`` is 0 in the truth file), as in any
capture that ends mid-stream. Timestamps advance as a link at ``--gbps`` would.

The output depends only on the options (same seed, same bytes).
"""

from __future__ import annotations

import argparse
import base64
import csv
import random
import struct
import sys
import time
from dataclasses import dataclass, field

# --------------------------------------------------------------------------- constants

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
REC = struct.Struct("<IIII")

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

# IPv4 + TCP with the 12-byte timestamp option (TCP header 32 bytes):
# pre(eth + ver/ihl + tos), totlen, id, frag/ttl/proto, cksum, addrs+ports,
# seq, ack, offset, flags, window, cksum+urg, nop/nop/ts-kind/len, tsval, tsecr
T4 = struct.Struct("!16sHH4sH12sIIBBH4s4sII")
# IPv6 + TCP: pre(eth + ver/tc/flow), payload len, nh/hlim/addrs/ports, ...
T6 = struct.Struct("!18sH38sIIBBH4s4sII")
# SYN / SYN-ACK: 20 bytes of options (TCP header 40 bytes)
S4 = struct.Struct("!16sHH4sH12sIIBBH4s8sII4s")
S6 = struct.Struct("!18sH38sIIBBH4s8sII4s")
U4 = struct.Struct("!16sHH4sH12sHH")
U6 = struct.Struct("!18sH38sHH")

ZERO4 = b"\x00\x00\x00\x00"
TSOPT = b"\x01\x01\x08\x0a"
SYNOPT_HEAD = b"\x02\x04\x05\xb4\x04\x02\x08\x0a"  # MSS 1460, SACK permitted, TS...
SYNOPT6_HEAD = b"\x02\x04\x05\xa0\x04\x02\x08\x0a"  # MSS 1440
SYNOPT_TAIL = b"\x01\x03\x03\x07"  # NOP, window scale 7

MSS4 = 1448  # 1500 - 20 - 32
MSS6 = 1428  # 1500 - 40 - 32

WORDS = (
    "alpha", "amber", "anchor", "apple", "arrow", "aspen", "atlas", "autumn", "badger", "bamboo",
    "basil", "beacon", "birch", "bison", "blossom", "breeze", "brook", "cactus", "canyon", "cedar",
    "cherry", "cinder", "citrus", "clover", "cobalt", "comet", "coral", "cotton", "crane",
    "crystal", "cypress", "daisy", "delta", "dune", "eagle", "ember", "falcon", "fennel", "fern",
    "fjord", "forest", "fox", "garnet", "ginger", "glacier", "granite", "harbor", "hazel", "heron",
    "hollow", "indigo", "iris", "ivory", "jasper", "juniper", "kestrel", "lagoon", "lantern",
    "laurel", "lemon", "lilac", "linden", "lotus", "lunar", "maple", "marble", "meadow", "mesa",
    "mint", "moss", "nectar", "nickel", "oak", "ocean", "olive", "onyx", "orchid", "otter",
    "pebble", "pepper", "pine", "plum", "poplar", "prairie", "quartz", "quill", "raven", "reed",
    "ridge", "river", "robin", "saffron", "sage", "sequoia", "shadow", "silver", "sparrow",
    "spruce", "summit", "swift", "thistle", "thunder", "tidal", "timber", "topaz", "tulip",
    "tundra", "valley", "velvet", "violet", "walnut", "willow", "wren", "yarrow", "zephyr",
)
TLDS = ("com", "net", "org", "io", "de", "fr", "co.uk", "nl", "info", "dev")

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "curl/7.88.1",
    "Debian APT-HTTP/1.3 (2.6.1)",
    "python-requests/2.31.0",
)
CONTENT_TYPES = ("text/html; charset=utf-8", "image/jpeg", "application/javascript",
                 "image/png", "application/octet-stream", "text/css")
SSH_CLIENTS = (b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3", b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6",
               b"SSH-2.0-OpenSSH_9.6", b"SSH-2.0-PuTTY_Release_0.80", b"SSH-2.0-OpenSSH_9.2p1")
SSH_SERVERS = (b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2", b"SSH-2.0-OpenSSH_8.4p1 Debian-5+deb11u3",
               b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13", b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6")

# protocol mix by flow count: (name, transport, server port, weight, expected findings)
MIX = (
    ("tls", "tcp", 443, 42, ""),
    ("http", "tcp", 80, 15, ""),
    ("dns", "udp", 53, 22, ""),
    ("ssh", "tcp", 22, 7, ""),
    ("smtp", "tcp", 25, 9, ""),
    ("ssh", "tcp", 443, 3, "port-mismatch;tunnel"),
    ("tls", "tcp", 22, 2, "port-mismatch"),
)

GBIT = 1.5  # default link rate for timestamps


# --------------------------------------------------------------------------- byte sources

class Source:
    """A long byte buffer to slice payloads from: ``buf = base + base[:slack]`` so that
    any ``buf[o:o + n]`` with ``o < period`` and ``n <= slack`` is valid."""

    __slots__ = ("buf", "period")

    def __init__(self, base: bytes, slack: int = 2048):
        self.period = len(base)
        self.buf = base + base[:slack]


def make_sources(rng: random.Random) -> dict[str, Source]:
    rand = rng.randbytes(1 << 20)
    # TLS 1.3 application data: full records of 16384 bytes + 1 (type) + 16 (tag)
    rec = b"\x17\x03\x03" + struct.pack("!H", 16401)
    recs = b"".join(rec + rand[i * 16401:(i + 1) * 16401] for i in range(63))
    # e-mail body: base64 lines of 76 characters
    b64 = base64.encodebytes(rand[:300_000]).replace(b"\n", b"\r\n")
    b64 = b64[: (len(b64) // 78) * 78]
    src = {"rand": Source(rand), "tls": Source(recs), "b64": Source(b64)}
    RAND[0] = src["rand"]
    return src


RAND: list = [None]  # the random source of the generator being run


def bulk(src: Source, n: int, off: int = 0) -> tuple:
    return (src.buf, src.period, off % src.period, n)


def raw_segments(parts, mss):
    """Cut a message (bytes and bulk parts) into segments of at most ``mss`` bytes."""
    pend = b""
    for p in parts:
        if type(p) is bytes:
            data = pend + p if pend else p
            k, n = 0, len(data)
            while n - k >= mss:
                yield data[k:k + mss]
                k += mss
            pend = data[k:]
            continue
        buf, period, off, n = p
        if pend:
            take = min(mss - len(pend), n)
            pend += buf[off:off + take]
            off += take
            if off >= period:
                off -= period
            n -= take
            if len(pend) < mss:
                continue
            yield pend
            pend = b""
        while n >= mss:
            yield buf[off:off + mss]
            off += mss
            if off >= period:
                off -= period
            n -= mss
        if n:
            pend = buf[off:off + n]
    if pend:
        yield pend


def segments(parts, mss):
    """``raw_segments`` with a flag telling the last segment of the message."""
    prev = None
    for s in raw_segments(parts, mss):
        if prev is not None:
            yield prev, False
        prev = s
    if prev is not None:
        yield prev, True


# --------------------------------------------------------------------------- flows

def ipv4_words(a: bytes) -> int:
    return (a[0] << 8 | a[1]) + (a[2] << 8 | a[3])


def inet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s ^ 0xFFFF


def mac_for(ip: bytes) -> bytes:
    return b"\x02\x00" + ip[-4:]


ROUTER_MAC = b"\x00\x1b\x21\x3a\x4c\x5e"


@dataclass(eq=False)
class Flow:
    fid: int
    proto: str
    transport: str
    cip: bytes
    cport: int
    sip: bytes
    sport: int
    findings: str
    v6: bool
    gen: object = None
    burst: int = 1
    npk: int = 0
    after: int = 0  # packets emitted after the flow's first payload packet
    seen: bool = False
    complete: bool = False
    # per direction (0 = client to server, 1 = server to client)
    pre: list = field(default_factory=list)
    mid: list = field(default_factory=list)
    ttlp: list = field(default_factory=list)
    cst: list = field(default_factory=list)
    seq: list = field(default_factory=list)
    ipid: list = field(default_factory=list)
    tsoff: list = field(default_factory=list)
    win: list = field(default_factory=list)
    tsv: list = field(default_factory=lambda: [0, 0])

    def setup(self, rng: random.Random, ttl_s: int):
        cmac, smac = mac_for(self.cip), ROUTER_MAC
        proto_num = 6 if self.transport == "tcp" else 17
        ports_c = struct.pack("!HH", self.cport, self.sport)
        ports_s = struct.pack("!HH", self.sport, self.cport)
        if self.v6:
            fl_c, fl_s = rng.getrandbits(20), rng.getrandbits(20)
            self.pre = [smac + cmac + b"\x86\xdd" + struct.pack("!I", 0x60000000 | fl_c),
                        cmac + smac + b"\x86\xdd" + struct.pack("!I", 0x60000000 | fl_s)]
            self.mid = [bytes([proto_num, 64]) + self.cip + self.sip + ports_c,
                        bytes([proto_num, ttl_s]) + self.sip + self.cip + ports_s]
        else:
            self.pre = [smac + cmac + b"\x08\x00\x45\x00", cmac + smac + b"\x08\x00\x45\x00"]
            self.mid = [self.cip + self.sip + ports_c, self.sip + self.cip + ports_s]
            self.ttlp = [bytes([0x40, 0, 64, proto_num]), bytes([0x40, 0, ttl_s, proto_num])]
            base = ipv4_words(self.cip) + ipv4_words(self.sip) + 0x4500 + 0x4000
            self.cst = [base + (64 << 8 | proto_num), base + (ttl_s << 8 | proto_num)]
        self.seq = [rng.getrandbits(32), rng.getrandbits(32)]
        self.ipid = [rng.getrandbits(16), rng.getrandbits(16)]
        self.tsoff = [rng.getrandbits(32), rng.getrandbits(32)]
        self.win = [rng.choice((501, 502, 506, 1026, 2052)), rng.choice((235, 509, 1040, 4096))]

    # ---- frame builders (the hot path)
    def pkt(self, d: int, flags: int, payload: bytes = b"") -> bytes:
        if self.seen:
            self.after += 1
        elif payload:
            self.seen = True
        n = len(payload)
        seq = self.seq
        tsv = (self.tsoff[d] + CLOCK[0] // 1_000_000) & 0xFFFFFFFF
        self.tsv[d] = tsv
        ipid = self.ipid[d] = (self.ipid[d] + 1) & 0xFFFF
        if self.v6:
            hdr = T6.pack(self.pre[d], 32 + n, self.mid[d], seq[d], seq[1 - d], 0x80, flags,
                          self.win[d], ZERO4, TSOPT, tsv, self.tsv[1 - d])
        else:
            tot = 52 + n
            s = self.cst[d] + tot + ipid
            s = (s & 0xFFFF) + (s >> 16)
            s = (s & 0xFFFF) + (s >> 16)
            hdr = T4.pack(self.pre[d], tot, ipid, self.ttlp[d], s ^ 0xFFFF, self.mid[d],
                          seq[d], seq[1 - d], 0x80, flags, self.win[d], ZERO4, TSOPT, tsv,
                          self.tsv[1 - d])
        seq[d] = (seq[d] + n) & 0xFFFFFFFF
        return hdr + payload if n else hdr

    def syn(self, d: int) -> bytes:
        if self.seen:
            self.after += 1
        seq = self.seq
        tsv = (self.tsoff[d] + CLOCK[0] // 1_000_000) & 0xFFFFFFFF
        self.tsv[d] = tsv
        ipid = self.ipid[d] = (self.ipid[d] + 1) & 0xFFFF
        flags = SYN if d == 0 else SYN | ACK
        ack = 0 if d == 0 else seq[0]
        tsecr = 0 if d == 0 else self.tsv[0]
        win = 64240 if d == 0 else 65160
        if self.v6:
            hdr = S6.pack(self.pre[d], 40, self.mid[d], seq[d], ack, 0xA0, flags, win, ZERO4,
                          SYNOPT6_HEAD, tsv, tsecr, SYNOPT_TAIL)
        else:
            s = self.cst[d] + 60 + ipid
            s = (s & 0xFFFF) + (s >> 16)
            s = (s & 0xFFFF) + (s >> 16)
            hdr = S4.pack(self.pre[d], 60, ipid, self.ttlp[d], s ^ 0xFFFF, self.mid[d], seq[d], ack,
                          0xA0, flags, win, ZERO4, SYNOPT_HEAD, tsv, tsecr, SYNOPT_TAIL)
        seq[d] = (seq[d] + 1) & 0xFFFFFFFF
        return hdr

    def udp(self, d: int, payload: bytes) -> bytes:
        if self.seen:
            self.after += 1
        elif payload:
            self.seen = True
        n = len(payload)
        if self.v6:  # the UDP checksum is mandatory over IPv6
            src, dst = (self.cip, self.sip) if d == 0 else (self.sip, self.cip)
            ports = self.mid[d][34:38]
            ck = inet_checksum(src + dst + struct.pack("!IxxxB", 8 + n, 17) + ports
                               + struct.pack("!HH", 8 + n, 0) + payload) or 0xFFFF
            return U6.pack(self.pre[d], 8 + n, self.mid[d], 8 + n, ck) + payload
        ipid = self.ipid[d] = (self.ipid[d] + 1) & 0xFFFF
        tot = 28 + n
        s = self.cst[d] + tot + ipid
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        return U4.pack(self.pre[d], tot, ipid, self.ttlp[d], s ^ 0xFFFF, self.mid[d], 8 + n, 0) + payload


CLOCK = [0]  # capture clock in nanoseconds, read by the TCP timestamp option


def tcp_conversation(f: Flow, msgs: list, ackevery: int):
    """Handshake, the messages (direction, parts) with delayed ACKs, FIN teardown."""
    mss = MSS6 if f.v6 else MSS4
    yield f.syn(0)
    yield f.syn(1)
    yield f.pkt(0, ACK)
    nmsg = len(msgs)
    for i, (d, parts) in enumerate(msgs):
        unacked = 0
        for payload, last in segments(parts, mss):
            yield f.pkt(d, PSH | ACK if last else ACK, payload)
            unacked += 1
            if unacked >= ackevery and not last:
                yield f.pkt(1 - d, ACK)
                unacked = 0
        nxt = msgs[i + 1][0] if i + 1 < nmsg else -1
        if unacked and (nxt != 1 - d or unacked > 1):
            yield f.pkt(1 - d, ACK)
    yield f.pkt(0, FIN | ACK)
    f.seq[0] = (f.seq[0] + 1) & 0xFFFFFFFF
    yield f.pkt(1, FIN | ACK)
    f.seq[1] = (f.seq[1] + 1) & 0xFFFFFFFF
    yield f.pkt(0, ACK)
    f.complete = True


def udp_exchange(f: Flow, msgs: list):
    for d, payload in msgs:
        yield f.udp(d, payload)
    f.complete = True


# --------------------------------------------------------------------------- protocol content

def hostname(rng: random.Random) -> str:
    w = rng.choice(WORDS)
    sub = rng.choice(("www", "cdn", "api", "static", "img", "login", "mail", "app", "assets", "m"))
    return f"{sub}.{w}{rng.choice(WORDS)}{rng.randrange(100)}.{rng.choice(TLDS)}"


def size_lognormal(rng: random.Random, median: float, sigma: float, cap: int) -> int:
    return max(1, min(cap, int(rng.lognormvariate(0, sigma) * median)))


def grease(rng: random.Random) -> int:
    b = rng.randrange(16)
    return (b << 12) | 0x0A00 | (b << 4) | 0x0A


def ext(t: int, data: bytes = b"") -> bytes:
    return struct.pack("!HH", t, len(data)) + data


def u16list(vals) -> bytes:
    return struct.pack(f"!{len(vals)}H", *vals)


def tls_client_hello(rng: random.Random, sni: str, sessid: bytes) -> bytes:
    g1, g2 = grease(rng), grease(rng)
    ciphers = [grease(rng), 0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8,
               0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035]
    name = sni.encode()
    alpn = b"\x02h2\x08http/1.1"
    groups = u16list([g2, 0x001D, 0x0017, 0x0018])
    sigalgs = u16list([0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601])
    keyshare = struct.pack("!HH", g2, 1) + b"\x00" + struct.pack("!HH", 0x001D, 32) + rng.randbytes(32)
    versions = u16list([grease(rng), 0x0304, 0x0303])
    exts = [
        ext(g1),
        ext(0x0000, struct.pack("!HBH", len(name) + 3, 0, len(name)) + name),
        ext(0x0017),
        ext(0xFF01, b"\x00"),
        ext(0x000A, struct.pack("!H", len(groups)) + groups),
        ext(0x000B, b"\x01\x00"),
        ext(0x0023),
        ext(0x0010, struct.pack("!H", len(alpn)) + alpn),
        ext(0x0005, b"\x01\x00\x00\x00\x00"),
        ext(0x000D, struct.pack("!H", len(sigalgs)) + sigalgs),
        ext(0x0012),
        ext(0x0033, struct.pack("!H", len(keyshare)) + keyshare),
        ext(0x002D, b"\x01\x01"),
        ext(0x002B, bytes([len(versions)]) + versions),
        ext(0x001B, b"\x02\x00\x02"),
        ext(grease(rng), b"\x00"),
    ]
    e = b"".join(exts)
    body = (b"\x03\x03" + rng.randbytes(32) + b"\x20" + sessid + struct.pack("!H", 2 * len(ciphers))
            + u16list(ciphers) + b"\x01\x00")
    # pad to 512 bytes of handshake like Chrome (padding extension 21)
    plen = 512 - (len(body) + 2 + len(e) + 4) - 4
    if plen > 0:
        e += ext(0x0015, bytes(plen))
    body += struct.pack("!H", len(e)) + e
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def tls_server_hello(rng: random.Random, sessid: bytes) -> bytes:
    exts = ext(0x002B, b"\x03\x04") + ext(0x0033, struct.pack("!HH", 0x001D, 32) + rng.randbytes(32))
    body = (b"\x03\x03" + rng.randbytes(32) + b"\x20" + sessid + b"\x13\x01\x00"
            + struct.pack("!H", len(exts)) + exts)
    hs = b"\x02" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x03" + struct.pack("!H", len(hs)) + hs


CCS = b"\x14\x03\x03\x00\x01\x01"


def tls_app(rng: random.Random, n: int) -> list:
    """One encrypted TLS 1.3 record carrying n bytes of plaintext (message parts)."""
    return [b"\x17\x03\x03" + struct.pack("!H", n + 17), bulk(RAND[0], n + 17, rng.randrange(1 << 20))]


def tls_stream(rng: random.Random, src: dict, n: int) -> list:
    """Application data of n plaintext bytes: full 16 KiB records then a last one."""
    full, rest = divmod(n, 16384)
    parts = []
    if full:
        parts.append(bulk(src["tls"], full * 16406, 16406 * rng.randrange(63)))
    if rest:
        parts.extend(tls_app(rng, rest))
    return parts


def tls_msgs(rng: random.Random, src: dict, sni: str) -> tuple[list, int]:
    sessid = rng.randbytes(32)
    cert = rng.randrange(1800, 5200)
    msgs = [
        (0, [tls_client_hello(rng, sni, sessid)]),
        (1, [tls_server_hello(rng, sessid), CCS, *tls_app(rng, rng.randrange(20, 60)), *tls_app(rng, cert),
             *tls_app(rng, rng.choice((79, 264, 520))), *tls_app(rng, 52)]),
        (0, [CCS, *tls_app(rng, 52)]),
    ]
    total = 0
    first = True
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 5))):
        msgs.append((0, [*tls_app(rng, rng.randrange(120, 900))]))
        if first:
            msgs.append((1, [*tls_app(rng, 233), *tls_app(rng, 233)]))  # session tickets
            first = False
        n = size_lognormal(rng, 9000, 2.0, 40_000_000)
        total += n
        msgs.append((1, tls_stream(rng, src, n)))
    return msgs, total


def http_msgs(rng: random.Random, src: dict, host: str) -> tuple[list, int]:
    msgs = []
    total = 0
    ua = rng.choice(USER_AGENTS)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 4))):
        path = "/" + "/".join(rng.choice(WORDS) for _ in range(rng.randrange(1, 4)))
        path += rng.choice((".html", ".js", ".css", ".jpg", ".png", "", "/", ".deb"))
        req = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\n"
               "Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n")
        n = size_lognormal(rng, 7000, 2.0, 40_000_000)
        total += n
        day = rng.randrange(1, 28)
        resp = (f"HTTP/1.1 200 OK\r\nDate: Tue, {day:02d} May 2024 10:{rng.randrange(60):02d}:"
                f"{rng.randrange(60):02d} GMT\r\nServer: nginx/1.22.1\r\n"
                f"Content-Type: {rng.choice(CONTENT_TYPES)}\r\nContent-Length: {n}\r\n"
                f"Last-Modified: Mon, 01 Apr 2024 08:00:00 GMT\r\nConnection: keep-alive\r\n"
                f'ETag: "{rng.getrandbits(48):012x}"\r\nAccept-Ranges: bytes\r\n\r\n').encode()
        msgs.append((0, [req.encode()]))
        msgs.append((1, [resp, bulk(src["rand"], n, rng.randrange(1 << 20))]))
    return msgs, total


def namelist(s: bytes) -> bytes:
    return struct.pack("!I", len(s)) + s


KEX_C = (b"sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,"
         b"ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,"
         b"diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,"
         b"diffie-hellman-group18-sha512,diffie-hellman-group14-sha256,ext-info-c")
# the server offers no sntrup761, so curve25519-sha256 (32-byte keys) is negotiated
KEX_S = KEX_C.replace(b"sntrup761x25519-sha512@openssh.com,", b"").replace(
    b",ext-info-c", b",kex-strict-s-v00@openssh.com")
HOSTKEY_C = (b"ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,"
             b"rsa-sha2-512-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,"
             b"ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256")
HOSTKEY_S = b"rsa-sha2-512,rsa-sha2-256,ecdsa-sha2-nistp256,ssh-ed25519"
CIPHERS = (b"chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,"
           b"aes128-gcm@openssh.com,aes256-gcm@openssh.com")
MACS = (b"umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,"
        b"hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,"
        b"umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1")
COMP = b"none,zlib@openssh.com"


def ssh_packet(rng: random.Random, payload: bytes) -> bytes:
    pad = 8 - (5 + len(payload)) % 8
    if pad < 4:
        pad += 8
    return struct.pack("!IB", 1 + len(payload) + pad, pad) + payload + rng.randbytes(pad)


def ssh_kexinit(rng: random.Random, server: bool) -> bytes:
    payload = (b"\x14" + rng.randbytes(16) + namelist(KEX_S if server else KEX_C)
               + namelist(HOSTKEY_S if server else HOSTKEY_C) + namelist(CIPHERS) * 2
               + namelist(MACS) * 2 + namelist(COMP) * 2 + namelist(b"") * 2 + b"\x00" + ZERO4)
    return ssh_packet(rng, payload)


def ssh_enc(rng: random.Random, n: int) -> list:
    """chacha20-poly1305 packet: 4-byte encrypted length, padded body, 16-byte tag (message parts)."""
    body = n + 5
    body += 8 - body % 8 if body % 8 else 0
    return [bulk(RAND[0], body + 16, rng.randrange(1 << 20))]


def ssh_msgs(rng: random.Random, src: dict) -> tuple[list, int]:
    cb = rng.choice(SSH_CLIENTS) + b"\r\n"
    sb = rng.choice(SSH_SERVERS) + b"\r\n"
    banners = [(0, [cb]), (1, [sb])] if rng.random() < 0.5 else [(1, [sb]), (0, [cb])]
    key = lambda n: struct.pack("!I", n) + rng.randbytes(n)  # noqa: E731
    hostkey = namelist(b"ssh-ed25519") + key(32)
    sig = namelist(b"ssh-ed25519") + key(64)
    msgs = [
        *banners,
        (0, [ssh_kexinit(rng, False)]),
        (1, [ssh_kexinit(rng, True)]),
        (0, [ssh_packet(rng, b"\x1e" + key(32))]),
        (1, [ssh_packet(rng, b"\x1f" + namelist(hostkey) + key(32) + namelist(sig)),
             ssh_packet(rng, b"\x15")]),
        (0, [ssh_packet(rng, b"\x15"), *ssh_enc(rng, 17)]),  # NEWKEYS + service request
        (1, [*ssh_enc(rng, 17), *ssh_enc(rng, 250)]),  # ext-info + service accept
        (0, [*ssh_enc(rng, 60)]),  # userauth none/publickey
        (1, [*ssh_enc(rng, 40)]),
        (0, [*ssh_enc(rng, 420)]),  # publickey with signature
        (1, [*ssh_enc(rng, 1)]),  # userauth success
        (0, [*ssh_enc(rng, 20)]),  # channel open
        (1, [*ssh_enc(rng, 600)]),  # hostkeys-00@openssh.com, open confirmation
        (0, [*ssh_enc(rng, 120), *ssh_enc(rng, 30)]),  # pty-req, shell/exec
        (1, [*ssh_enc(rng, 10), *ssh_enc(rng, 300)]),
    ]
    total = 0
    if rng.random() < 0.35:  # interactive session: keystrokes and echoes
        for _ in range(rng.randrange(10, 400)):
            msgs.append((0, [*ssh_enc(rng, 10)]))
            msgs.append((1, [*ssh_enc(rng, rng.choice((10, 10, 10, 50, 200, 1200)))]))
    else:  # scp/sftp/git: bulk in one direction
        n = size_lognormal(rng, 15000, 2.2, 60_000_000)
        total = n
        msgs.append((0, [*ssh_enc(rng, 60)]))
        msgs.append((rng.choice((0, 1, 1)), [bulk(src["rand"], n, rng.randrange(1 << 20))]))
        msgs.append((1, [*ssh_enc(rng, 20)]))
    msgs.append((0, [*ssh_enc(rng, 20)]))  # channel close / disconnect
    return msgs, total


def smtp_msgs(rng: random.Random, src: dict) -> tuple[list, int]:
    dom = f"{rng.choice(WORDS)}{rng.choice(WORDS)}.{rng.choice(TLDS)}"
    mx = f"mx{rng.randrange(1, 5)}.{dom}"
    cli = f"mail{rng.randrange(1, 50)}.{rng.choice(WORDS)}{rng.choice(WORDS)}.{rng.choice(TLDS)}"
    n = size_lognormal(rng, 12000, 1.8, 20_000_000)
    n -= n % 78
    qid = f"{rng.getrandbits(40):010X}"
    head = (f"Received: from {cli}\r\nFrom: {rng.choice(WORDS)}@{cli}\r\nTo: {rng.choice(WORDS)}@{dom}\r\n"
            f"Subject: {rng.choice(WORDS)} {rng.choice(WORDS)}\r\nDate: Tue, 14 May 2024 10:00:00 +0000\r\n"
            f"Message-ID: <{rng.getrandbits(64):x}@{cli}>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: application/octet-stream; name="report.pdf"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n").encode()
    b = lambda s: [s.encode()]  # noqa: E731
    msgs = [
        (1, b(f"220 {mx} ESMTP Postfix (Debian/GNU)\r\n")),
        (0, b(f"EHLO {cli}\r\n")),
        (1, b(f"250-{mx}\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n"
              "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250 SMTPUTF8\r\n")),
        (0, b(f"MAIL FROM:<{rng.choice(WORDS)}@{cli}> SIZE={n + len(head)}\r\n")),
        (1, b("250 2.1.0 Ok\r\n")),
        (0, b(f"RCPT TO:<{rng.choice(WORDS)}@{dom}>\r\n")),
        (1, b("250 2.1.5 Ok\r\n")),
        (0, b("DATA\r\n")),
        (1, b("354 End data with <CR><LF>.<CR><LF>\r\n")),
        (0, [head, bulk(src["b64"], n, 78 * rng.randrange(3000)), b".\r\n"]),
        (1, b(f"250 2.0.0 Ok: queued as {qid}\r\n")),
        (0, b("QUIT\r\n")),
        (1, b("221 2.0.0 Bye\r\n")),
    ]
    return msgs, n


def dns_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"


def dns_msgs(rng: random.Random) -> list:
    name = hostname(rng)
    qtype = rng.choice((1, 1, 1, 28, 28, 65))
    tid = rng.getrandbits(16)
    q = dns_name(name) + struct.pack("!HH", qtype, 1)
    edns = rng.random() < 0.6
    query = struct.pack("!HHHHHH", tid, 0x0100, 1, 0, 0, int(edns)) + q
    if edns:  # EDNS0 OPT record, UDP size 1232
        query += b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)
    answers = []
    if qtype in (1, 28):
        for _ in range(rng.choice((1, 1, 2, 4))):
            rdata = rng.randbytes(4) if qtype == 1 else b"\x20\x01\x0d\xb8" + rng.randbytes(12)
            answers.append(b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, rng.randrange(30, 3600), len(rdata))
                           + rdata)
    else:  # HTTPS RR: priority 1, target ".", alpn h2,h3
        rdata = b"\x00\x01\x00" + b"\x00\x01\x00\x06\x02h2\x02h3"
        answers.append(b"\xc0\x0c" + struct.pack("!HHIH", 65, 1, 300, len(rdata)) + rdata)
    resp = (struct.pack("!HHHHHH", tid, 0x8180, 1, len(answers), 0, 0) + q + b"".join(answers))
    return [(0, query), (1, resp)]


# --------------------------------------------------------------------------- the generator

class Generator:
    def __init__(self, seed: int, concurrent: int, v6_fraction: float = 0.1, gbps: float = GBIT):
        self.rng = random.Random(seed)
        rng = self.rng
        self.src = make_sources(rng)
        self.concurrent = concurrent
        self.v6_fraction = v6_fraction
        self.ns_per_byte = 8 / gbps  # nanoseconds per byte on the wire
        self.weights = [m[3] for m in MIX]
        nclients = max(64, concurrent // 4)
        self.clients4 = [bytes([10, rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)])
                         for _ in range(nclients)]
        self.clients6 = [b"\x20\x01\x0d\xb8\x00\x01" + rng.randbytes(10) for _ in range(nclients // 8 + 1)]
        nserv = max(32, concurrent // 10)
        self.servers4 = [bytes([198, 18 + rng.randrange(2), rng.randrange(256), rng.randrange(1, 255)])
                         for _ in range(nserv)]
        self.servers6 = [b"\x20\x01\x0d\xb8\x00\xff" + rng.randbytes(10) for _ in range(nserv // 8 + 1)]
        self.resolvers4 = [bytes([198, 18, 0, 53]), bytes([198, 18, 1, 53])]
        self.resolvers6 = [b"\x20\x01\x0d\xb8\x00\xff" + bytes(9) + b"\x53"]
        self.used: set = set()
        self.nflows = 0
        self.flows: list[Flow] = []

    def new_flow(self) -> Flow:
        rng = self.rng
        proto, transport, port, _, findings = rng.choices(MIX, self.weights)[0]
        v6 = rng.random() < self.v6_fraction
        if proto == "dns":
            sip = rng.choice(self.resolvers6 if v6 else self.resolvers4)
        else:
            sip = rng.choice(self.servers6 if v6 else self.servers4)
        clients = self.clients6 if v6 else self.clients4
        while True:
            cip = rng.choice(clients)
            cport = rng.randrange(32768, 61000)
            key = (transport, cip, cport, sip, port)
            if key not in self.used:
                self.used.add(key)
                break
        f = Flow(self.nflows, proto, transport, cip, cport, sip, port, findings, v6)
        self.nflows += 1
        f.setup(rng, rng.choice((44, 50, 52, 54, 56, 57, 58, 60)))
        src = self.src
        if proto == "dns":
            f.gen = udp_exchange(f, dns_msgs(rng))
            self.flows.append(f)
            return f
        if proto == "tls":
            msgs, size = tls_msgs(rng, src, hostname(rng))
        elif proto == "http":
            msgs, size = http_msgs(rng, src, hostname(rng))
        elif proto == "ssh":
            msgs, size = ssh_msgs(rng, src)
        else:
            msgs, size = smtp_msgs(rng, src)
        f.burst = 1 + min(15, size // 65536)
        f.gen = tcp_conversation(f, msgs, rng.choice((1, 2, 2, 2)))
        self.flows.append(f)
        return f

    def write(self, out, npackets: int) -> dict:
        rng = self.rng
        randrange, rnd = rng.randrange, rng.random
        write = out.write
        rec = REC.pack
        nspb = self.ns_per_byte
        clock = CLOCK
        clock[0] = 1_715_680_800 * 1_000_000_000  # 2024-05-14 10:00:00 UTC
        active = [self.new_flow() for _ in range(min(self.concurrent, npackets))]
        emitted = 0
        nbytes = 0
        t = clock[0]
        while emitted < npackets and active:
            i = randrange(len(active))
            f = active[i]
            gen = f.gen
            for _ in range(f.burst):
                fr = next(gen, None)
                if fr is None:
                    f.gen = None
                    active[i] = self.new_flow()
                    break
                n = len(fr)
                t += int((n + 24) * nspb * (0.5 + rnd())) + 1
                clock[0] = t
                sec, ns = divmod(t, 1_000_000_000)
                write(rec(sec, ns // 1000, n, n))
                write(fr)
                f.npk += 1
                nbytes += n
                emitted += 1
                if emitted >= npackets:
                    break
        return {"packets": emitted, "frame_bytes": nbytes, "open_at_end": len(active),
                "duration_s": (t - 1_715_680_800 * 1_000_000_000) / 1e9}

    def write_truth(self, path: str):
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["transport", "client_ip", "client_port", "server_ip", "server_port", "protocol",
                        "findings", "packets", "complete"])
            for f in self.flows:
                if f.npk == 0:
                    continue
                w.writerow([f.transport, ip_text(f.cip), f.cport, ip_text(f.sip), f.sport, f.proto,
                            f.findings, f.npk, int(f.complete)])


def ip_text(a: bytes) -> str:
    import ipaddress

    return str(ipaddress.ip_address(a))


def generate(path: str, packets: int, concurrent: int, seed: int, truth: str | None = None,
             v6_fraction: float = 0.1, gbps: float = GBIT) -> dict:
    g = Generator(seed, concurrent, v6_fraction, gbps)
    with open(path, "wb", buffering=1 << 22) as out:
        out.write(PCAP_HEADER)
        stats = g.write(out, packets)
    if truth:
        g.write_truth(truth)
    seen = [f for f in g.flows if f.npk]
    stats["flows"] = len(seen)
    stats["complete_flows"] = sum(f.complete for f in seen)
    stats["after_first_payload"] = sum(f.after for f in seen) / max(1, stats["packets"])
    by = {}
    for f in seen:
        k = f.proto if not f.findings else f"{f.proto}-on-{f.sport}"
        by[k] = by.get(k, 0) + 1
    stats["flows_by_protocol"] = by
    stats["file_bytes"] = 24 + 16 * stats["packets"] + stats["frame_bytes"]
    return stats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument("--concurrent", type=int, default=20_000, help="flows open at once")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ipv6", type=float, default=0.1, help="fraction of flows over IPv6")
    ap.add_argument("--gbps", type=float, default=GBIT, help="link rate for the timestamps")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--truth", help="CSV with one row per flow")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    stats = generate(a.output, a.packets, a.concurrent, a.seed, a.truth, a.ipv6, a.gbps)
    el = time.perf_counter() - t0
    if not a.quiet:
        print(f"wrote {a.output}: {stats['packets']:,} packets, {stats['file_bytes'] / 1e6:,.0f} MB, "
              f"{stats['flows']:,} flows ({stats['complete_flows']:,} complete), "
              f"{stats['after_first_payload']:.1%} of packets after their flow's first payload, "
              f"{stats['duration_s']:.2f} s of traffic", file=sys.stderr)
        print(f"flows by protocol: {stats['flows_by_protocol']}", file=sys.stderr)
        print(f"generated in {el:.1f} s ({stats['packets'] / el:,.0f} packets/s, "
              f"{stats['file_bytes'] / el / 1e6:,.0f} MB/s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
