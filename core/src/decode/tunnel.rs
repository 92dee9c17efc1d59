//! Tunnel headers that are neither IP nor UDP themselves: GRE and GTP-U (IP-in-IP and VXLAN
//! need no header of their own beyond what `ip` reads).

use super::bytes::{be16, span, u8_at};
use super::walk::{malformed, not_ip, Cx, Next, Step};

const ETH_TEB: u16 = 0x6558; // transparent Ethernet bridging inside GRE
const ETH_PPP: u16 = 0x880B;
const MAX_GTPU_EXT: usize = 8;

pub(crate) fn gre<'a>(cx: &mut Cx<'a>, off: usize) -> Next<'a> {
    if span(off, cx.end) < 4 {
        return malformed();
    }
    let (Some(flags), Some(ptype)) = (be16(cx.buf, off), be16(cx.buf, off + 2)) else {
        return malformed();
    };
    let opt = |bit: u16| if flags & bit != 0 { 4 } else { 0 };
    let p = off
        + 4
        + match flags & 0x7 {
            // Enhanced GRE (PPTP, RFC 2637): key present, optional sequence and acknowledgment.
            1 => 4 + opt(0x1000) + opt(0x0080),
            0 => opt(0x8000) + opt(0x2000) + opt(0x1000),
            _ => return not_ip(),
        };
    if p > cx.end {
        return malformed();
    }
    cx.encap.push("gre");
    cx.tags = 0; // a new link header: its own VLAN tag budget
    match ptype {
        ETH_TEB => Next::Go(Step::Ethernet(p)),
        ETH_PPP => Next::Go(Step::Ppp(p)),
        _ => Next::Go(Step::EtherType(ptype, p)),
    }
}

pub(crate) fn gtpu<'a>(cx: &mut Cx<'a>, off: usize) -> Next<'a> {
    let (buf, end) = (cx.buf, cx.end);
    if span(off, end) < 8 {
        return not_ip();
    }
    let (Some(flags), Some(mtype)) = (u8_at(buf, off), u8_at(buf, off + 1)) else {
        return malformed();
    };
    if flags >> 5 != 1 || flags & 0x10 == 0 || mtype != 0xFF {
        return not_ip(); // not GTPv1 with PT=1 carrying a G-PDU
    }
    let mut p = off + 8;
    if flags & 0x07 != 0 {
        if span(p, end) < 4 {
            return malformed();
        }
        let Some(mut next_ext) = u8_at(buf, p + 3) else {
            return malformed();
        };
        p += 4;
        for _ in 0..MAX_GTPU_EXT {
            if next_ext == 0 {
                break;
            }
            if p >= end {
                return malformed();
            }
            let Some(units) = u8_at(buf, p) else {
                return malformed();
            };
            let hlen = usize::from(units) * 4;
            if hlen == 0 || p + hlen > end {
                return malformed();
            }
            let Some(n) = u8_at(buf, p + hlen - 1) else {
                return malformed();
            };
            next_ext = n;
            p += hlen;
        }
    }
    cx.encap.push("gtpu");
    Next::Go(Step::IpByVersion(p))
}
