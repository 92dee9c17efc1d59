//! IPv4 (options skipped), IPv6 (extension headers walked), and the TCP/UDP header after them.

use super::bytes::{be16, be32, span, u8_at, v4, v6};
use super::walk::{malformed, not_ip, Cx, FragKey, Fragment, Next, Step, Walk, MAX_ENCAP_DEPTH};
use super::{Addr, Packet, TCP, UDP};

/// Generic IPv6 extension headers: hop-by-hop, routing, destination options, mobility, HIP,
/// shim6, experimental (length in 8-byte units, not counting the first).
const IPV6_EXT_GENERIC: [u8; 8] = [0, 43, 60, 135, 139, 140, 253, 254];
const IPV6_AH: u8 = 51;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_NO_NEXT: u8 = 59;
const MAX_IPV6_EXT: usize = 8;

const VXLAN_PORT: u16 = 4789;
/// GTP-U: 3GPP TS 29.281 §4.4.2.3 sends every G-PDU to UDP destination port 2152 (the source
/// port is the sender's own choice), so only the destination port says GTP-U; Python also took a
/// source port 2152, and its Ethernet fast path only a destination port, so the same datagram
/// decoded two ways.
const GTPU_PORT: u16 = 2152;

pub(crate) fn by_version<'a>(cx: &mut Cx<'a>, off: usize) -> Next<'a> {
    if span(off, cx.end) < 1 {
        return malformed();
    }
    match u8_at(cx.buf, off).map(|b| b >> 4) {
        Some(4) => Next::Go(Step::Ipv4(off)),
        Some(6) => Next::Go(Step::Ipv6(off)),
        Some(_) => not_ip(),
        None => malformed(),
    }
}

pub(crate) fn ipv4<'a>(cx: &mut Cx<'a>, off: usize) -> Next<'a> {
    if span(off, cx.end) < 20 {
        return malformed();
    }
    let buf = cx.buf;
    let (Some(vihl), Some(total), Some(ident), Some(frag), Some(proto), Some(src), Some(dst)) = (
        u8_at(buf, off),
        be16(buf, off + 2),
        be16(buf, off + 4),
        be16(buf, off + 6),
        u8_at(buf, off + 9),
        v4(buf, off + 12),
        v4(buf, off + 16),
    ) else {
        return malformed();
    };
    let ihl = usize::from(vihl & 0x0F) << 2;
    if vihl >> 4 != 4 || ihl < 20 || usize::from(total) < ihl {
        return malformed();
    }
    // Bound by the IP total length so Ethernet padding never becomes payload; a snaplen-cut
    // frame keeps what it has.
    let ip_end = (off + usize::from(total)).min(cx.end);
    let l4 = off + ihl;
    if l4 > ip_end {
        return malformed();
    }
    cx.end = ip_end;
    cx.wire_end = off + usize::from(total);
    let (src, dst) = (Addr::V4(src), Addr::V4(dst));
    if frag & 0x3FFF != 0 {
        let key = FragKey {
            src,
            dst,
            ident: u32::from(ident),
            proto,
        };
        let offset = usize::from(frag & 0x1FFF) << 3;
        return fragment(cx, key, offset, frag & 0x2000 != 0, l4);
    }
    cx.ip = (src, dst);
    Next::Go(Step::Transport { proto, off: l4 })
}

fn fragment<'a>(cx: &mut Cx<'a>, key: FragKey, offset: usize, more: bool, at: usize) -> Next<'a> {
    let Some(data) = cx.buf.get(at..cx.end) else {
        return malformed();
    };
    Next::Done(Walk::Fragment(Fragment {
        key,
        offset,
        more,
        data,
        encap: std::mem::take(&mut cx.encap),
        depth: cx.depth,
        tunnel: None,
    }))
}

pub(crate) fn ipv6<'a>(cx: &mut Cx<'a>, off: usize) -> Next<'a> {
    if span(off, cx.end) < 40 {
        return malformed();
    }
    let buf = cx.buf;
    let (Some(vtc), Some(plen), Some(mut nxt), Some(src), Some(dst)) = (
        u8_at(buf, off),
        be16(buf, off + 4),
        u8_at(buf, off + 6),
        v6(buf, off + 8),
        v6(buf, off + 24),
    ) else {
        return malformed();
    };
    if vtc >> 4 != 6 {
        return malformed();
    }
    let mut ip_end = off + 40 + usize::from(plen);
    cx.wire_end = if plen == 0 { cx.end } else { ip_end };
    if ip_end > cx.end || plen == 0 {
        ip_end = cx.end; // a jumbogram or a cut frame: keep what was captured
    }
    cx.end = ip_end;
    let (src, dst) = (Addr::V6(src), Addr::V6(dst));
    let mut p = off + 40;
    let mut ended = false;
    for _ in 0..MAX_IPV6_EXT {
        let unit_shift = if IPV6_EXT_GENERIC.contains(&nxt) {
            Some((1, 3))
        } else if nxt == IPV6_AH {
            Some((2, 2)) // AH counts its length in 4-byte words, minus 2
        } else {
            None
        };
        if nxt == IPV6_FRAGMENT {
            if span(p, ip_end) < 8 {
                return malformed();
            }
            let (Some(inner), Some(fo), Some(ident)) =
                (u8_at(buf, p), be16(buf, p + 2), be32(buf, p + 4))
            else {
                return malformed();
            };
            let key = FragKey {
                src,
                dst,
                ident,
                proto: inner,
            };
            return fragment(cx, key, usize::from(fo & 0xFFF8), fo & 1 != 0, p + 8);
        }
        let Some((extra, shift)) = unit_shift else {
            ended = true;
            break;
        };
        if span(p, ip_end) < 8 {
            return malformed();
        }
        let (Some(next), Some(len)) = (u8_at(buf, p), u8_at(buf, p + 1)) else {
            return malformed();
        };
        nxt = next;
        p += (usize::from(len) + extra) << shift;
        if p > ip_end {
            return malformed();
        }
    }
    if !ended {
        return malformed();
    }
    if nxt == IPV6_NO_NEXT {
        return not_ip();
    }
    cx.ip = (src, dst);
    Next::Go(Step::Transport { proto: nxt, off: p })
}

/// The transport header after an IP header; tunnels carried over IP or UDP go on from here.
pub(crate) fn transport<'a>(cx: &mut Cx<'a>, proto: u8, off: usize) -> Next<'a> {
    let (buf, end) = (cx.buf, cx.end);
    let (src, dst) = cx.ip;
    if proto == TCP {
        if span(off, end) < 20 {
            return malformed();
        }
        let (Some(sport), Some(dport), Some(seq), Some(doff), Some(flags)) = (
            be16(buf, off),
            be16(buf, off + 2),
            be32(buf, off + 4),
            u8_at(buf, off + 12),
            u8_at(buf, off + 13),
        ) else {
            return malformed();
        };
        let poff = off + (usize::from(doff >> 4) << 2);
        let Some(payload) = buf.get(poff..end).filter(|_| poff >= off + 20) else {
            return malformed();
        };
        let wire = cx.wire_end.saturating_sub(poff).max(payload.len());
        return Next::Done(Walk::Packet(Packet {
            proto,
            src,
            dst,
            sport,
            dport,
            flags,
            seq,
            payload,
            wire_len: u32::try_from(wire).unwrap_or(u32::MAX),
            encap: cx.layers(),
            tunnel: None,
        }));
    }
    if proto == UDP {
        if span(off, end) < 8 {
            return malformed();
        }
        let (Some(sport), Some(dport), Some(ulen)) =
            (be16(buf, off), be16(buf, off + 2), be16(buf, off + 4))
        else {
            return malformed();
        };
        if ulen < 8 {
            return malformed();
        }
        let pend = (off + usize::from(ulen)).min(end);
        let Some(payload) = buf.get(off + 8..pend) else {
            return malformed();
        };
        let udp = Packet {
            proto,
            src,
            dst,
            sport,
            dport,
            flags: 0,
            seq: 0,
            payload,
            wire_len: u32::from(ulen - 8).max(payload.len() as u32),
            encap: cx.layers(),
            tunnel: None,
        };
        if cx.depth < MAX_ENCAP_DEPTH {
            let vxlan = dport == VXLAN_PORT
                && span(off, pend) >= 16
                && u8_at(buf, off + 8).is_some_and(|f| f & 0x08 != 0);
            if vxlan || dport == GTPU_PORT {
                if !vxlan && cx.tunnel.is_none() {
                    cx.tunnel = Some(udp.clone());
                }
                cx.fallback = Some(udp);
                cx.depth += 1;
                cx.end = pend;
                if vxlan {
                    cx.encap.push("vxlan");
                    return Next::Go(Step::Ethernet(off + 16));
                }
                return Next::Go(Step::Gtpu(off + 8));
            }
        }
        return Next::Done(Walk::Packet(udp));
    }
    if cx.depth >= MAX_ENCAP_DEPTH {
        return not_ip();
    }
    let (layer, step) = match proto {
        4 => (Some("ipip"), Step::Ipv4(off)),
        41 => (
            Some(if matches!(src, Addr::V4(_)) {
                "6in4"
            } else {
                "ip6ip6"
            }),
            Step::Ipv6(off),
        ),
        47 => (None, Step::Gre(off)), // GRE names its layer once its header is read
        _ => return not_ip(),
    };
    cx.depth += 1;
    if let Some(layer) = layer {
        cx.encap.push(layer);
    }
    Next::Go(step)
}
