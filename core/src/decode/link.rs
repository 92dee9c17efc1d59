//! Link layers: where a frame of each link type starts, Ethernet and its tags, MPLS, PPPoE, PPP.

use super::bytes::{be16, be32, le32, span, u8_at};
use super::walk::{malformed, not_ip, Cx, Next, Step, Walk, MAX_VLAN_TAGS};
use super::Encap;

pub(crate) const ETH_IPV4: u16 = 0x0800;
pub(crate) const ETH_IPV6: u16 = 0x86DD;
const ETH_VLAN: [u16; 4] = [0x8100, 0x88A8, 0x9100, 0x9200];
const ETH_MPLS: [u16; 2] = [0x8847, 0x8848];
const ETH_PPPOE_SESSION: u16 = 0x8864;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
const MAX_MPLS_LABELS: usize = 8;

/// The first step for a frame of `linktype`, or `None` for a link type not decoded.
pub(crate) fn start(linktype: u32, frame: &[u8]) -> Option<Result<(Step, Encap), Walk<'static>>> {
    let len = frame.len();
    let bad = Some(Err(Walk::Malformed));
    let plain = |step| Some(Ok((step, Vec::new())));
    match linktype {
        1 => plain(Step::Ethernet(0)),
        12 | 14 | 101 | 228 | 229 => plain(Step::IpByVersion(0)),
        113 => match be16(frame, 14) {
            Some(etype) if len >= 16 => plain(Step::EtherType(etype, 16)),
            _ => bad,
        },
        276 => match be16(frame, 0) {
            Some(etype) if len >= 20 => plain(Step::EtherType(etype, 20)),
            _ => bad,
        },
        0 | 108 => Some(null(linktype, frame)),
        9 | 50 => plain(Step::Ppp(0)),
        104 => match be16(frame, 2) {
            Some(etype) if len >= 4 => Some(Ok((Step::EtherType(etype, 4), vec!["chdlc"]))),
            _ => bad,
        },
        _ => None,
    }
}

/// BSD loopback: a 4-byte address family, in host order for DLT_NULL (which the file does not
/// record, hence the guess), network order for DLT_LOOP.
fn null(linktype: u32, frame: &[u8]) -> Result<(Step, Encap), Walk<'static>> {
    let (Some(le), Some(be)) = (le32(frame, 0), be32(frame, 0)) else {
        return Err(Walk::Malformed);
    };
    let family = if linktype == 108 || le > 0xFFFF {
        be
    } else {
        le
    };
    match family {
        2 => Ok((Step::Ipv4(4), Vec::new())),
        10 | 24 | 28 | 30 => Ok((Step::Ipv6(4), Vec::new())),
        _ => Err(Walk::NotIp),
    }
}

pub(crate) fn ethernet<'a>(cx: &mut Cx<'a>, off: usize) -> Next<'a> {
    if span(off, cx.end) < 14 {
        return malformed();
    }
    let Some(etype) = be16(cx.buf, off + 12) else {
        return malformed();
    };
    cx.tags = 0;
    Next::Go(Step::EtherType(etype, off + 14))
}

pub(crate) fn ethertype<'a>(cx: &mut Cx<'a>, etype: u16, off: usize) -> Next<'a> {
    match etype {
        ETH_IPV4 => Next::Go(Step::Ipv4(off)),
        ETH_IPV6 => Next::Go(Step::Ipv6(off)),
        _ if ETH_VLAN.contains(&etype) => {
            // The tag limit holds under every link type, not only Ethernet (Python let SLL,
            // Cisco HDLC and GRE stack tags without end, into a RecursionError).
            if span(off, cx.end) < 4 || cx.tags >= MAX_VLAN_TAGS {
                return malformed();
            }
            let Some(inner) = be16(cx.buf, off + 2) else {
                return malformed();
            };
            cx.tags += 1;
            Next::Go(Step::EtherType(inner, off + 4))
        }
        _ if ETH_MPLS.contains(&etype) => Next::Go(Step::Mpls(off)),
        ETH_PPPOE_SESSION => {
            if span(off, cx.end) < 6 {
                return malformed();
            }
            cx.encap.push("pppoe");
            Next::Go(Step::PppProto(off + 6))
        }
        _ => not_ip(),
    }
}

pub(crate) fn mpls<'a>(cx: &mut Cx<'a>, mut off: usize) -> Next<'a> {
    for _ in 0..MAX_MPLS_LABELS {
        if span(off, cx.end) < 4 {
            return malformed();
        }
        let Some(label) = u8_at(cx.buf, off + 2) else {
            return malformed();
        };
        off += 4;
        if label & 0x01 != 0 {
            // MPLS does not say what it carries; the IP version nibble does (RFC 4928 guidance).
            cx.encap.push("mpls");
            return Next::Go(Step::IpByVersion(off));
        }
    }
    malformed()
}

pub(crate) fn ppp<'a>(cx: &mut Cx<'a>, mut off: usize) -> Next<'a> {
    if span(off, cx.end) >= 2 && cx.buf.get(off..off + 2) == Some(&[0xFF, 0x03][..]) {
        off += 2; // HDLC-like framing: address and control bytes (RFC 1662)
    }
    cx.encap.push("ppp");
    Next::Go(Step::PppProto(off))
}

pub(crate) fn ppp_proto<'a>(cx: &mut Cx<'a>, off: usize) -> Next<'a> {
    if span(off, cx.end) < 1 {
        return malformed();
    }
    let Some(first) = u8_at(cx.buf, off) else {
        return malformed();
    };
    // Protocol-field compression (RFC 1661 §6.5) leaves a single odd byte.
    let (proto, off) = if first & 1 != 0 {
        (u16::from(first), off + 1)
    } else {
        match be16(cx.buf, off) {
            Some(p) if span(off, cx.end) >= 2 => (p, off + 2),
            _ => return malformed(),
        }
    };
    match proto {
        PPP_IPV4 => Next::Go(Step::Ipv4(off)),
        PPP_IPV6 => Next::Go(Step::Ipv6(off)),
        _ => not_ip(),
    }
}
