"""Oracle for the Rust decoder (core/examples/dump_decode.rs): one line per frame, as the
pipeline's general path (decode + `_defragment`) sees it.

  dump_decode.py frames FILE...   print "ts linktype hex" per record (the Rust example's input)
  dump_decode.py decode FILE...   print the decode result per record
  dump_decode.py decode -         read "ts linktype hex" lines from stdin instead (mutated frames)

A line: index, kind (packet/notip/unsupported/malformed/held), for a packet: proto, src, dst,
sport, dport, flags, seq, payload length, payload FNV-1a 64, encap; then fragments/dropped.
"""

from __future__ import annotations

import ipaddress
import sys

from portwatch.capture.decode import FRAGMENT, MALFORMED, SUPPORTED_LINKTYPES, decode, decode_ip_payload
from portwatch.capture.fragments import Defragmenter
from portwatch.capture.sources import CaptureSource


def fnv(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def records(paths: list[str]):
    if paths == ["-"]:
        for line in sys.stdin:
            ts, lt, hx = (line.split() + [""])[:3]
            buf = bytes.fromhex(hx)
            yield float(ts), int(lt), buf, 0, len(buf)
        return
    for path in paths:
        with CaptureSource(path) as src:
            yield from src


def main() -> None:
    mode, paths = sys.argv[1], sys.argv[2:]
    out = sys.stdout
    if mode == "frames":
        for ts, lt, buf, off, length in records(paths):
            out.write(f"{ts!r} {lt} {buf[off:off + length].hex()}\n")
        return
    defrag = Defragmenter()
    fragments = 0
    for i, (ts, lt, buf, off, length) in enumerate(records(paths)):
        pkt = decode(lt, buf, off, length)
        if pkt is None:
            kind = "notip" if lt in SUPPORTED_LINKTYPES else "unsupported"
        elif pkt is MALFORMED:
            kind = "malformed"
        else:
            kind = "packet"
            if pkt[0] == FRAGMENT:
                _, s, d, key, proto, offset, more, fb, doff, dend, encap = pkt
                fragments += 1
                data = defrag.add(key, offset, more, fb[doff:dend], ts)
                kind = "held"
                if data is not None:
                    pkt = decode_ip_payload(proto, s, d, data, 0, len(data), encap)
                    if pkt is MALFORMED:
                        kind = "malformed"
                    elif pkt is not None and pkt[0] != FRAGMENT:
                        kind = "packet"
        line = f"{i} {kind}"
        if kind == "packet":
            proto, s, d, sp, dp, flags, seq, pb, po, pe, encap = pkt
            payload = bytes(pb[po:pe])
            enc = ",".join(encap) if encap else "-"
            line += (f" {proto} {ipaddress.ip_address(bytes(s))} {ipaddress.ip_address(bytes(d))} {sp} {dp}"
                     f" {flags} {seq} {len(payload)} {fnv(payload):016x} {enc}")
        out.write(f"{line} | {fragments} {defrag.dropped}\n")


if __name__ == "__main__" and sys.argv[1] != "mutate":
    main()


# ---- mutated frames: `dump_decode.py mutate SEED N` prints "ts linktype hex" lines -------------
def base_frames() -> list[tuple[int, bytes]]:
    """Frames of every link type and tunnel the decoder knows, built with scapy."""
    from scapy.all import GRE, IP, PPP, TCP, UDP, VXLAN, Dot1AD, Dot1Q, Ether, IPv6, PPPoE, Raw, raw
    from scapy.contrib.mpls import MPLS
    from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer
    from scapy.layers.inet6 import IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting
    from scapy.layers.ipsec import AH
    from scapy.layers.l2 import CookedLinux

    pay = Raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    tcp = TCP(sport=40000, dport=80, flags="PA", seq=12345) / pay
    udp = UDP(sport=5353, dport=53) / Raw(b"\x12\x34" + b"q" * 30)
    ip4 = IP(src="10.0.0.1", dst="10.0.0.2")
    ip6 = IPv6(src="2001:db8::1", dst="2001:db8::2")
    e = Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb")
    out: list[tuple[int, bytes]] = []
    for l3 in (ip4 / tcp, ip4 / udp, ip6 / tcp, ip6 / udp, IP(src="1.2.3.4", dst="5.6.7.8", options=b"\x01\x01\x01\x00") / tcp):
        out.append((1, raw(e / l3)))
        out.append((1, raw(e / Dot1Q(vlan=5) / l3)))
        out.append((1, raw(e / Dot1AD(vlan=3) / Dot1Q(vlan=5) / l3)))
        out.append((1, raw(e / MPLS(label=16, s=0) / MPLS(label=17, s=1) / l3)))
        out.append((1, raw(e / PPPoE(sessionid=1) / PPP(proto=0x21 if l3.version == 4 else 0x57) / l3)))
        out.append((113, raw(CookedLinux(proto=0x800 if l3.version == 4 else 0x86DD) / l3)))
        et = b"\x08\x00" if l3.version == 4 else b"\x86\xdd"
        out.append((113, b"\x00\x00\x00\x01\x00\x06" + b"\x00" * 8 + b"\x81\x00" + b"\x00\x05" + et + raw(l3)))
        out.append((276, et + b"\x00\x00" + b"\x00\x00\x00\x02\x00\x01\x00\x06" + b"\x00" * 8 + raw(l3)))
        out.append((104, b"\x0f\x00" + et + raw(l3)))
        out.append((104, b"\x0f\x00\x88\x47" + b"\x00\x01\x01\x40" + raw(l3)))
        fam = 2 if l3.version == 4 else 30
        out.append((0, fam.to_bytes(4, "little") + raw(l3)))
        out.append((0, fam.to_bytes(4, "big") + raw(l3)))
        out.append((108, fam.to_bytes(4, "big") + raw(l3)))
        ppp = b"\x00\x21" if l3.version == 4 else b"\x00\x57"
        out.append((9, b"\xff\x03" + ppp + raw(l3)))
        out.append((50, ppp[1:] + raw(l3)))
        for lt in (101, 12, 14, 228, 229):
            out.append((lt, raw(l3)))
        # Tunnels.
        out.append((1, raw(e / IP(src="9.9.9.1", dst="9.9.9.2") / l3)))
        out.append((1, raw(e / IPv6(src="fe80::1", dst="fe80::2") / l3)))
        out.append((1, raw(e / IP(src="9.9.9.1", dst="9.9.9.2") / GRE() / l3)))
        out.append((1, raw(e / IP(src="9.9.9.1", dst="9.9.9.2") / GRE(key_present=1, key=7, seqnum_present=1, sequence_number=3, chksum_present=1) / l3)))
        out.append((1, raw(e / IP(src="9.9.9.1", dst="9.9.9.2") / GRE(proto=0x6558) / e / Dot1Q(vlan=9) / l3)))
        out.append((1, raw(e / IP(src="9.9.9.1", dst="9.9.9.2", proto=47) / Raw(b"\x30\x81\x88\x0b\x00\x10\x00\x01" + b"\x00\x00\x00\x05" * 2) / PPP(proto=0x21 if l3.version == 4 else 0x57) / l3)))
        out.append((1, raw(e / IP(src="9.9.9.1", dst="9.9.9.2") / UDP(sport=1234, dport=4789) / VXLAN(vni=42) / e / l3)))
        out.append((1, raw(e / IP(src="9.9.9.1", dst="9.9.9.2") / UDP(sport=2152, dport=2152) / GTP_U_Header(teid=1) / l3)))
        out.append((101, raw(IP(src="9.9.9.1", dst="9.9.9.2") / UDP(sport=3000, dport=2152) / GTP_U_Header(teid=1, E=1, next_ex=0x85) / GTPPDUSessionContainer(QFI=5) / l3)))
        # Nested past the depth bound.
        nest = l3
        for _ in range(6):
            nest = IP(src="7.7.7.1", dst="7.7.7.2") / GRE() / nest
        out.append((1, raw(e / nest)))
    out.append((1, raw(e / ip6 / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting() / AH(nh=6, payloadlen=4, icv=b"\x00" * 12) / tcp)))
    # Fragments: in order, reversed, overlapping, IPv6.
    big4 = ip4 / UDP(sport=1111, dport=2222) / Raw(bytes(range(256)) * 8)
    from scapy.all import fragment, fragment6

    frags = [raw(e / f) for f in fragment(big4, fragsize=512)]
    out += [(1, f) for f in frags] + [(1, f) for f in reversed(frags)]
    big6 = IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment(id=77) / UDP(sport=1, dport=2) / Raw(b"z" * 3000)
    out += [(1, raw(e / f)) for f in fragment6(big6, 1280)]
    return out


def mutate(seed: int, rounds: int) -> None:
    import random

    rng = random.Random(seed)
    base = base_frames()
    out = sys.stdout
    ts = 1000.0
    for lt, frame in base:
        out.write(f"{ts!r} {lt} {frame.hex()}\n")
    for _ in range(rounds):
        lt, frame = rng.choice(base)
        f = bytearray(frame)
        for _ in range(rng.randint(1, 3)):
            kind = rng.random()
            if kind < 0.3:
                del f[rng.randint(0, len(f)):]
            elif f:
                at = rng.randrange(min(len(f), 120))
                f[at] = rng.choice((0, 0xFF, 0x08, 0x45, 0x60, 0x81, 0x11, 0x06, 0x2F, 0x04, 0x29, 0x2C, rng.randrange(256)))
        ts += rng.random()
        out.write(f"{ts!r} {lt} {f.hex()}\n")


if __name__ == "__main__" and sys.argv[1] == "mutate":
    mutate(int(sys.argv[2]), int(sys.argv[3]))
