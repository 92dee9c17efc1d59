//! The packet a frame decodes to when that depends on the frame alone (not an IP fragment):
//! what `parallel`'s reader needs to send each frame only to the worker that tracks its flow.
//! It is the decoder's own walk (one decoder: no second, faster copy of its layers to drift
//! from it), without the defragmenter, which only the workers keep.

use super::link;
use super::walk::{walk, Walk};
use super::Packet;

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
