//! The packet a frame decodes to when that depends on the frame alone (not an IP fragment):
//! what `parallel`'s reader needs to send each frame only to the worker that tracks its flow.
//! It is the decoder's own walk (one decoder: no second, faster copy of its layers to drift
//! from it), without the defragmenter, which only the workers keep.

use super::link;
use super::walk::{walk, Walk};
use super::{Addr, Encap, Packet};

/// The packet `Decoder::decode` gives for `frame`, when no earlier frame can change it; None
/// for a fragment (and a datagram carrying one), and for a frame that is no packet (not IP,
/// malformed, a link type not decoded).
pub fn peek(linktype: u32, frame: &[u8]) -> Option<Packet<'_>> {
    let start = link::start(linktype, frame)?.ok()?;
    match walk(start.buf, start.step, start.encap, 0) {
        Walk::Packet(p) => Some(p),
        _ => None,
    }
}

/// A packet `peek` found, held apart from its frame: its payload as a place in the frame, so
/// that one thread can decode a frame and another take the packet (`crate::predecode`).
#[derive(Clone, Debug, PartialEq)]
pub struct Peeked {
    proto: u8,
    src: Addr,
    dst: Addr,
    sport: u16,
    dport: u16,
    flags: u8,
    seq: u32,
    payload_at: usize,
    payload_len: usize,
    wire_len: u32,
    encap: Option<Encap>,
    /// The flow key's `flow_hash`: worked out on the thread that decodes ahead, it spares the
    /// analysing thread a hash at each of the three look-ups a packet makes there (the two
    /// prefetches and the flow's).
    hash: u64,
}

impl Peeked {
    /// `frame`'s packet as `peek` gives it, held apart; None where `peek` gives none, and for a
    /// packet inside a GTP-U tunnel (which brings the tunnel's own packet along).
    pub fn of(linktype: u32, frame: &[u8]) -> Option<Peeked> {
        Self::from_packet(peek(linktype, frame)?, frame)
    }

    /// `p`, which `peek` found in `frame`, held apart; None for a packet inside a tunnel.
    pub fn from_packet(p: Packet<'_>, frame: &[u8]) -> Option<Peeked> {
        if p.tunnel.is_some() {
            return None;
        }
        // Where the payload lies in the frame: the walk's slices are the frame's own.
        let at = (p.payload.as_ptr() as usize).checked_sub(frame.as_ptr() as usize)?;
        let end = at.checked_add(p.payload.len())?;
        if end > frame.len() {
            return None;
        }
        let key = crate::pipeline::packet_key(&p);
        Some(Peeked {
            hash: crate::flow::key::flow_hash(&key),
            proto: p.proto,
            src: p.src,
            dst: p.dst,
            sport: p.sport,
            dport: p.dport,
            flags: p.flags,
            seq: p.seq,
            payload_at: at,
            payload_len: p.payload.len(),
            wire_len: p.wire_len,
            encap: p.encap,
        })
    }

    /// The flow key of the packet (`pipeline::packet_key`'s), without its frame.
    pub fn key(&self) -> crate::flow::key::Key {
        crate::flow::key::Key {
            proto: self.proto,
            a: self.src,
            b: self.dst,
            a_port: self.sport,
            b_port: self.dport,
        }
    }

    /// `flow_hash(&self.key())`.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The packet again, over the same frame it was found in.
    pub fn packet(self, frame: &[u8]) -> Packet<'_> {
        let end = self.payload_at.saturating_add(self.payload_len);
        Packet {
            proto: self.proto,
            src: self.src,
            dst: self.dst,
            sport: self.sport,
            dport: self.dport,
            flags: self.flags,
            seq: self.seq,
            payload: frame.get(self.payload_at..end).unwrap_or(&[]),
            wire_len: self.wire_len,
            encap: self.encap,
            tunnel: None,
        }
    }
}
