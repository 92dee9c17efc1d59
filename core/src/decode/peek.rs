//! The packet a frame decodes to when that depends on the frame alone (not an IP fragment):
//! what `parallel`'s reader needs to send each frame only to the worker that tracks its flow.
//! It is called once per frame by the thread that also reads the capture, so the plainest
//! frames (Ethernet, IPv4 or IPv6 without options to walk, TCP or UDP not tunnelled) take a
//! short path; every other frame takes the decoder's own walk.

use super::bytes::{be16, be32, span, u8_at, v4, v6};
use super::link::{self, ETH_IPV4, ETH_IPV6};
use super::walk::{walk, Walk};
use super::{Addr, Packet, TCP, UDP};

/// UDP destination ports the walk tries a tunnel behind (VXLAN, GTP-U): the short path leaves
/// them to it.
const TUNNEL_PORTS: [u16; 2] = [4789, 2152];

/// The packet `Decoder::decode` gives for `frame`, when no earlier frame can change it; None
/// for a fragment (and a datagram carrying one), and for a frame that is no packet (not IP,
/// malformed, a link type not decoded).
pub fn peek(linktype: u32, frame: &[u8]) -> Option<Packet<'_>> {
    let quick = if linktype == 1 { quick(frame) } else { None };
    if let Some(p) = quick {
        debug_assert_eq!(Some(&p), walked(linktype, frame).as_ref());
        return Some(p);
    }
    walked(linktype, frame)
}

fn walked(linktype: u32, frame: &[u8]) -> Option<Packet<'_>> {
    let start = link::start(linktype, frame)?.ok()?;
    match walk(start.buf, start.step, start.encap, 0) {
        Walk::Packet(p) => Some(p),
        _ => None,
    }
}

/// Ethernet, then IPv4 (not a fragment) or IPv6 (no extension header), then TCP or UDP: the
/// walk's checks, in its order, for these layers only. None sends the frame to the walk.
fn quick(frame: &[u8]) -> Option<Packet<'_>> {
    let etype = be16(frame, 12)?;
    let off = 14;
    let len = frame.len();
    let (src, dst, proto, l4, end, wire_end) = match etype {
        ETH_IPV4 => {
            if span(off, len) < 20 {
                return None;
            }
            let vihl = u8_at(frame, off)?;
            let total = usize::from(be16(frame, off + 2)?);
            let frag = be16(frame, off + 6)?;
            let ihl = usize::from(vihl & 0x0F) << 2;
            if vihl >> 4 != 4 || ihl < 20 || total < ihl || frag & 0x3FFF != 0 {
                return None;
            }
            let end = (off + total).min(len);
            let l4 = off + ihl;
            if l4 > end {
                return None;
            }
            let proto = u8_at(frame, off + 9)?;
            let (src, dst) = (
                Addr::V4(v4(frame, off + 12)?),
                Addr::V4(v4(frame, off + 16)?),
            );
            (src, dst, proto, l4, end, off + total)
        }
        ETH_IPV6 => {
            if span(off, len) < 40 || u8_at(frame, off)? >> 4 != 6 {
                return None;
            }
            let plen = usize::from(be16(frame, off + 4)?);
            let proto = u8_at(frame, off + 6)?;
            if proto != TCP && proto != UDP {
                return None;
            }
            let (src, dst) = (
                Addr::V6(v6(frame, off + 8)?),
                Addr::V6(v6(frame, off + 24)?),
            );
            let ip_end = off + 40 + plen;
            let wire_end = if plen == 0 { len } else { ip_end };
            let end = if ip_end > len || plen == 0 {
                len
            } else {
                ip_end
            };
            (src, dst, proto, off + 40, end, wire_end)
        }
        _ => return None,
    };
    if proto == TCP {
        if span(l4, end) < 20 {
            return None;
        }
        let (sport, dport, seq) = (be16(frame, l4)?, be16(frame, l4 + 2)?, be32(frame, l4 + 4)?);
        let (doff, flags) = (u8_at(frame, l4 + 12)?, u8_at(frame, l4 + 13)?);
        let poff = l4 + (usize::from(doff >> 4) << 2);
        if poff < l4 + 20 {
            return None;
        }
        let payload = frame.get(poff..end)?;
        let wire = wire_end.saturating_sub(poff).max(payload.len());
        return Some(Packet {
            proto,
            src,
            dst,
            sport,
            dport,
            flags,
            seq,
            payload,
            wire_len: u32::try_from(wire).unwrap_or(u32::MAX),
            encap: None,
            tunnel: None,
        });
    }
    if proto != UDP || span(l4, end) < 8 {
        return None;
    }
    let (sport, dport, ulen) = (be16(frame, l4)?, be16(frame, l4 + 2)?, be16(frame, l4 + 4)?);
    if ulen < 8 || TUNNEL_PORTS.contains(&dport) {
        return None;
    }
    let pend = (l4 + usize::from(ulen)).min(end);
    let payload = frame.get(l4 + 8..pend)?;
    Some(Packet {
        proto,
        src,
        dst,
        sport,
        dport,
        flags: 0,
        seq: 0,
        payload,
        wire_len: u32::from(ulen - 8).max(payload.len() as u32),
        encap: None,
        tunnel: None,
    })
}
