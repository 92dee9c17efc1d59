"""Link, IP and transport decoding: frame bytes in, a packet tuple out. Pure, no state.

`decode(linktype, buf, off, length)` returns one of
- a `Packet` tuple: (proto, src, dst, sport, dport, tcp_flags, seq, buf, payload_off, payload_end, encap)
  where src/dst are the raw 4- or 16-byte addresses and the payload is buf[payload_off:payload_end];
- a `Fragment` tuple: (FRAGMENT, src, dst, key, proto, frag_off, more, buf, data_off, data_end, encap)
  for an IP fragment, which `fragments.Defragmenter` reassembles before `decode_ip_payload`;
- `None` for a frame that carries no TCP/UDP (ARP, ICMP, an unsupported link type...);
- `MALFORMED` for a frame whose headers are inconsistent.

Tuples rather than objects because this runs once per packet (DESIGN.md, hot path). Offsets are
always checked against `end`, so truncated (snaplen-cut) frames never index past the record.
"""

from __future__ import annotations

from struct import error as StructError
from struct import unpack_from

TCP = 6
UDP = 17
FRAGMENT = -1
MALFORMED = ("malformed",)

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN = frozenset((0x8100, 0x88A8, 0x9100, 0x9200))
ETH_MPLS = frozenset((0x8847, 0x8848))
ETH_PPPOE_SESSION = 0x8864
ETH_TEB = 0x6558  # transparent Ethernet bridging inside GRE
ETH_PPP = 0x880B

PPP_IPV4 = 0x0021
PPP_IPV6 = 0x0057

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_PPP = 9
LINKTYPE_RAW_OPENBSD = 14
LINKTYPE_RAW_BSD = 12
LINKTYPE_PPP_HDLC = 50
LINKTYPE_RAW = 101
LINKTYPE_C_HDLC = 104
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

SUPPORTED_LINKTYPES = frozenset(
    (
        LINKTYPE_NULL,
        LINKTYPE_ETHERNET,
        LINKTYPE_PPP,
        LINKTYPE_RAW_BSD,
        LINKTYPE_RAW_OPENBSD,
        LINKTYPE_PPP_HDLC,
        LINKTYPE_RAW,
        LINKTYPE_C_HDLC,
        LINKTYPE_LOOP,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_IPV4,
        LINKTYPE_IPV6,
        LINKTYPE_LINUX_SLL2,
    )
)

IPV6_EXT_GENERIC = frozenset((0, 43, 60, 135, 139, 140, 253, 254))
MAX_VLAN_TAGS = 4
MAX_MPLS_LABELS = 8
MAX_IPV6_EXT = 8
MAX_ENCAP_DEPTH = 4

VXLAN_PORT = 4789
GTPU_PORT = 2152

Packet = tuple


def decode(linktype: int, buf: bytes, off: int, length: int) -> Packet | None:
    """Decode one captured frame of the given link type."""
    end = off + length
    try:
        if linktype == LINKTYPE_ETHERNET:
            return _ethernet(buf, off, end, None, 0)
        if linktype in (LINKTYPE_RAW, LINKTYPE_RAW_BSD, LINKTYPE_RAW_OPENBSD, LINKTYPE_IPV4, LINKTYPE_IPV6):
            return _ip_by_version(buf, off, end, None, 0)
        if linktype == LINKTYPE_LINUX_SLL:
            if end - off < 16:
                return MALFORMED
            return _ethertype(unpack_from("!H", buf, off + 14)[0], buf, off + 16, end, None, 0)
        if linktype == LINKTYPE_LINUX_SLL2:
            if end - off < 20:
                return MALFORMED
            return _ethertype(unpack_from("!H", buf, off)[0], buf, off + 20, end, None, 0)
        if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
            return _null(linktype, buf, off, end)
        if linktype in (LINKTYPE_PPP, LINKTYPE_PPP_HDLC):
            return _ppp(buf, off, end, None, 0)
        if linktype == LINKTYPE_C_HDLC:
            if end - off < 4:
                return MALFORMED
            return _ethertype(unpack_from("!H", buf, off + 2)[0], buf, off + 4, end, ("chdlc",), 0)
    except (StructError, IndexError):
        return MALFORMED
    return None


def _add(encap: tuple[str, ...] | None, layer: str) -> tuple[str, ...]:
    return (layer,) if encap is None else (*encap, layer)


def _ethernet(buf: bytes, off: int, end: int, encap: tuple[str, ...] | None, depth: int) -> Packet | None:
    if end - off < 14:
        return MALFORMED
    etype = (buf[off + 12] << 8) | buf[off + 13]
    off += 14
    tags = 0
    while etype in ETH_VLAN:
        if end - off < 4 or tags == MAX_VLAN_TAGS:
            return MALFORMED
        etype = (buf[off + 2] << 8) | buf[off + 3]
        off += 4
        tags += 1
    return _ethertype(etype, buf, off, end, encap, depth)


def _ethertype(
    etype: int, buf: bytes, off: int, end: int, encap: tuple[str, ...] | None, depth: int
) -> Packet | None:
    if etype == ETH_IPV4:
        return _ipv4(buf, off, end, encap, depth)
    if etype == ETH_IPV6:
        return _ipv6(buf, off, end, encap, depth)
    if etype in ETH_VLAN:
        if end - off < 4:
            return MALFORMED
        return _ethertype((buf[off + 2] << 8) | buf[off + 3], buf, off + 4, end, encap, depth)
    if etype in ETH_MPLS:
        return _mpls(buf, off, end, encap, depth)
    if etype == ETH_PPPOE_SESSION:
        if end - off < 6:
            return MALFORMED
        return _ppp_proto(buf, off + 6, end, _add(encap, "pppoe"), depth)
    return None


def _mpls(buf: bytes, off: int, end: int, encap: tuple[str, ...] | None, depth: int) -> Packet | None:
    for _ in range(MAX_MPLS_LABELS):
        if end - off < 4:
            return MALFORMED
        bottom = buf[off + 2] & 0x01
        off += 4
        if bottom:
            # MPLS does not say what it carries; the IP version nibble does (RFC 4928 guidance).
            return _ip_by_version(buf, off, end, _add(encap, "mpls"), depth)
    return MALFORMED


def _ppp(buf: bytes, off: int, end: int, encap: tuple[str, ...] | None, depth: int) -> Packet | None:
    if end - off >= 2 and buf[off] == 0xFF and buf[off + 1] == 0x03:
        off += 2  # HDLC-like framing: address and control bytes (RFC 1662)
    return _ppp_proto(buf, off, end, _add(encap, "ppp") if encap else ("ppp",), depth)


def _ppp_proto(buf: bytes, off: int, end: int, encap: tuple[str, ...] | None, depth: int) -> Packet | None:
    if end - off < 1:
        return MALFORMED
    # Protocol-field compression (RFC 1661 §6.5) leaves a single odd byte.
    if buf[off] & 1:
        proto, off = buf[off], off + 1
    else:
        if end - off < 2:
            return MALFORMED
        proto, off = (buf[off] << 8) | buf[off + 1], off + 2
    if proto == PPP_IPV4:
        return _ipv4(buf, off, end, encap, depth)
    if proto == PPP_IPV6:
        return _ipv6(buf, off, end, encap, depth)
    return None


def _null(linktype: int, buf: bytes, off: int, end: int) -> Packet | None:
    if end - off < 4:
        return MALFORMED
    if linktype == LINKTYPE_LOOP:
        family = unpack_from("!I", buf, off)[0]
    else:
        # DLT_NULL stores the family in the writer's byte order, which the file does not record.
        family = unpack_from("<I", buf, off)[0]
        if family > 0xFFFF:
            family = unpack_from(">I", buf, off)[0]
    if family == 2:
        return _ipv4(buf, off + 4, end, None, 0)
    if family in (10, 24, 28, 30):
        return _ipv6(buf, off + 4, end, None, 0)
    return None


def _ip_by_version(buf: bytes, off: int, end: int, encap: tuple[str, ...] | None, depth: int) -> Packet | None:
    if end - off < 1:
        return MALFORMED
    version = buf[off] >> 4
    if version == 4:
        return _ipv4(buf, off, end, encap, depth)
    if version == 6:
        return _ipv6(buf, off, end, encap, depth)
    return None


def _ipv4(buf: bytes, off: int, end: int, encap: tuple[str, ...] | None, depth: int) -> Packet | None:
    if end - off < 20:
        return MALFORMED
    vihl = buf[off]
    ihl = (vihl & 0x0F) << 2
    if vihl >> 4 != 4 or ihl < 20:
        return MALFORMED
    total, ident, frag = unpack_from("!HHH", buf, off + 2)
    if total < ihl:
        return MALFORMED
    # Bound by the IP total length so Ethernet padding never becomes payload; a snaplen-cut frame
    # keeps what it has.
    ip_end = off + total
    if ip_end > end:
        ip_end = end
    proto = buf[off + 9]
    src = buf[off + 12 : off + 16]
    dst = buf[off + 16 : off + 20]
    l4 = off + ihl
    if l4 > ip_end:
        return MALFORMED
    if frag & 0x3FFF:
        return (FRAGMENT, src, dst, (4, src, dst, ident, proto), proto, (frag & 0x1FFF) << 3, frag & 0x2000,
                buf, l4, ip_end, encap)
    return decode_ip_payload(proto, src, dst, buf, l4, ip_end, encap, depth)


def _ipv6(buf: bytes, off: int, end: int, encap: tuple[str, ...] | None, depth: int) -> Packet | None:
    if end - off < 40:
        return MALFORMED
    if buf[off] >> 4 != 6:
        return MALFORMED
    plen = (buf[off + 4] << 8) | buf[off + 5]
    nxt = buf[off + 6]
    src = buf[off + 8 : off + 24]
    dst = buf[off + 24 : off + 40]
    ip_end = off + 40 + plen
    if ip_end > end or plen == 0:  # plen 0 is a jumbogram or a cut frame: keep what was captured
        ip_end = end
    p = off + 40
    for _ in range(MAX_IPV6_EXT):
        if nxt in IPV6_EXT_GENERIC:
            if ip_end - p < 8:
                return MALFORMED
            nxt, hlen = buf[p], (buf[p + 1] + 1) << 3
            p += hlen
        elif nxt == 51:  # AH counts its length in 4-byte words, minus 2
            if ip_end - p < 8:
                return MALFORMED
            nxt, hlen = buf[p], (buf[p + 1] + 2) << 2
            p += hlen
        elif nxt == 44:
            if ip_end - p < 8:
                return MALFORMED
            inner, fo, ident = buf[p], unpack_from("!H", buf, p + 2)[0], unpack_from("!I", buf, p + 4)[0]
            return (FRAGMENT, src, dst, (6, src, dst, ident, inner), inner, fo & 0xFFF8, fo & 1,
                    buf, p + 8, ip_end, encap)
        else:
            break
        if p > ip_end:
            return MALFORMED
    else:
        return MALFORMED
    if nxt == 59:
        return None
    return decode_ip_payload(nxt, src, dst, buf, p, ip_end, encap, depth)


def decode_ip_payload(
    proto: int,
    src: bytes,
    dst: bytes,
    buf: bytes,
    off: int,
    end: int,
    encap: tuple[str, ...] | None,
    depth: int = 0,
) -> Packet | None:
    """Decode the transport header that follows an IP header (or a reassembled fragment train)."""
    if proto == TCP:
        if end - off < 20:
            return MALFORMED
        sport, dport, seq = unpack_from("!HHI", buf, off)
        doff = (buf[off + 12] >> 4) << 2
        if doff < 20 or off + doff > end:
            return MALFORMED
        return (TCP, src, dst, sport, dport, buf[off + 13], seq, buf, off + doff, end, encap)
    if proto == UDP:
        if end - off < 8:
            return MALFORMED
        sport, dport, ulen = unpack_from("!HHH", buf, off)
        if ulen < 8:
            return MALFORMED
        pend = off + ulen
        if pend > end:
            pend = end
        if depth < MAX_ENCAP_DEPTH:
            if dport == VXLAN_PORT and pend - off >= 16 and buf[off + 8] & 0x08:
                inner = _ethernet(buf, off + 16, pend, _add(encap, "vxlan"), depth + 1)
                if inner is not None and inner is not MALFORMED:
                    return inner
            elif GTPU_PORT in (dport, sport):
                inner = _gtpu(buf, off + 8, pend, encap, depth + 1)
                if inner is not None and inner is not MALFORMED:
                    return inner
        return (UDP, src, dst, sport, dport, 0, 0, buf, off + 8, pend, encap)
    if depth >= MAX_ENCAP_DEPTH:
        return None
    if proto == 4:
        return _ipv4(buf, off, end, _add(encap, "ipip"), depth + 1)
    if proto == 41:
        return _ipv6(buf, off, end, _add(encap, "6in4" if len(src) == 4 else "ip6ip6"), depth + 1)
    if proto == 47:
        return _gre(buf, off, end, encap, depth + 1)
    return None


def _gre(buf: bytes, off: int, end: int, encap: tuple[str, ...] | None, depth: int) -> Packet | None:
    if end - off < 4:
        return MALFORMED
    flags, ptype = unpack_from("!HH", buf, off)
    version = flags & 0x7
    p = off + 4
    if version == 1:  # enhanced GRE (PPTP, RFC 2637): key present, optional seq and ack
        p += 4 + (4 if flags & 0x1000 else 0) + (4 if flags & 0x0080 else 0)
    elif version == 0:
        p += (4 if flags & 0x8000 else 0) + (4 if flags & 0x2000 else 0) + (4 if flags & 0x1000 else 0)
    else:
        return None
    if p > end:
        return MALFORMED
    layer = _add(encap, "gre")
    if ptype == ETH_TEB:
        return _ethernet(buf, p, end, layer, depth)
    if ptype == ETH_PPP:
        return _ppp(buf, p, end, layer, depth)
    return _ethertype(ptype, buf, p, end, layer, depth)


def _gtpu(buf: bytes, off: int, end: int, encap: tuple[str, ...] | None, depth: int) -> Packet | None:
    if end - off < 8:
        return None
    flags, mtype = buf[off], buf[off + 1]
    if flags >> 5 != 1 or not flags & 0x10 or mtype != 0xFF:  # GTPv1, PT=1, G-PDU
        return None
    p = off + 8
    if flags & 0x07:
        if end - p < 4:
            return MALFORMED
        next_ext = buf[p + 3]
        p += 4
        for _ in range(8):
            if not next_ext:
                break
            if p >= end:
                return MALFORMED
            hlen = buf[p] * 4
            if hlen == 0 or p + hlen > end:
                return MALFORMED
            next_ext = buf[p + hlen - 1]
            p += hlen
    return _ip_by_version(buf, p, end, _add(encap, "gtpu"), depth)
