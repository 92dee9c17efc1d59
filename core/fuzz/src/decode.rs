//! Target `decode`: many frames of one link type through one `Decoder`, so that the
//! defragmenter's state (pending datagrams, timeouts, bounds) carries from frame to frame.
//!
//! Input: `[link][frame]...`; `link` picks `LINKTYPES[link % len]` (every supported link type,
//! then two unsupported ones); each frame is `[dt][len: u16 BE][len bytes]` (the last may be
//! short), at most `MAX_FRAMES`. The capture clock starts at `T0` and moves by `dt`: forward
//! `dt / 2` seconds for `dt < 0xf0` (so 30 s fragment timeouts are reached), else back
//! `dt - 0xef` seconds (captures are not always in time order).
//!
//! Checked, beyond "no panic":
//! - `UnsupportedLink` exactly for the link types outside `SUPPORTED_LINKTYPES`;
//! - a packet is TCP or UDP, its two addresses of one family, a UDP packet has no flags or
//!   sequence number, its payload at most one IP datagram, each layer a known name;
//! - the defragmenter stays within its bounds (pending datagrams, bytes held) and its fragment
//!   count never goes down;
//! - where `Peeked` (the packet `predecode` finds on its own thread) has a packet, the decoder
//!   gives that same packet.
use _core::decode::{Addr, Decoded, Decoder, Peeked, SUPPORTED_LINKTYPES, TCP, UDP};

/// Frames decoded per input at most.
pub const MAX_FRAMES: usize = 512;
/// Capture time of the first frame (any plausible epoch time).
const T0: f64 = 1_700_000_000.0;
/// fragments.rs's bounds (crate-private there).
const MAX_PENDING: usize = 1024;
const MAX_HELD_BYTES: usize = 16 << 20;
const MAX_DATAGRAM: usize = 65535;
/// The layer names decode/mod.rs documents for `Packet::encap`.
const LAYERS: &[&str] = &[
    "chdlc", "ppp", "pppoe", "mpls", "vxlan", "ipip", "6in4", "ip6ip6", "gre", "gtpu",
];

/// Unsupported link types tried too: they must be answered, not crash.
const UNSUPPORTED: [u32; 2] = [147, 0xffff];

pub fn linktype(sel: u8) -> u32 {
    let n = SUPPORTED_LINKTYPES.len() + UNSUPPORTED.len();
    let i = usize::from(sel) % n;
    SUPPORTED_LINKTYPES
        .get(i)
        .or_else(|| UNSUPPORTED.get(i - SUPPORTED_LINKTYPES.len()))
        .copied()
        .unwrap_or(0)
}

/// The selector byte for `linktype`, if it is one of `LINKTYPES`.
pub fn selector(linktype: u32) -> Option<u8> {
    SUPPORTED_LINKTYPES
        .iter()
        .chain(UNSUPPORTED.iter())
        .position(|&l| l == linktype)
        .and_then(|i| u8::try_from(i).ok())
}

/// Frames with their capture times, as `frames` splits them.
pub type Frames<'a> = Vec<(f64, &'a [u8])>;

/// An input of this layout: its link type and its frames; None for an empty input.
pub fn input(data: &[u8]) -> Option<(u32, Frames<'_>)> {
    let (&sel, rest) = data.split_first()?;
    Some((linktype(sel), frames(rest)))
}

/// Splits the frames (see the module docs): (capture time, frame).
pub fn frames(mut data: &[u8]) -> Frames<'_> {
    let mut ts = T0;
    let mut out = Vec::new();
    while out.len() < MAX_FRAMES {
        let [dt, hi, lo, rest @ ..] = data else {
            break;
        };
        if *dt < 0xf0 {
            ts += f64::from(*dt) / 2.0;
        } else {
            ts -= f64::from(*dt - 0xef);
        }
        let n = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
        let (frame, tail) = rest.split_at(n);
        out.push((ts, frame));
        data = tail;
    }
    out
}

/// One frame in the input format, for seeds.
pub fn frame_record(dt: u8, frame: &[u8]) -> Vec<u8> {
    let frame = &frame[..frame.len().min(usize::from(u16::MAX))];
    let mut out = vec![dt];
    out.extend_from_slice(&(frame.len() as u16).to_be_bytes());
    out.extend_from_slice(frame);
    out
}

pub fn run(data: &[u8]) {
    let Some((link, frames)) = input(data) else {
        return;
    };
    let supported = SUPPORTED_LINKTYPES.contains(&link);
    let mut dec = Decoder::new();
    let mut fragments = 0;
    for (ts, frame) in frames {
        let peeked = Peeked::of(link, frame);
        let decoded = dec.decode(ts, link, frame);
        if let Some(peeked) = peeked {
            match &decoded {
                Decoded::Packet(p) => assert_eq!(&peeked.packet(frame), p, "peeked packet differs"),
                other => panic!("peeked a packet, the decoder gave {other:?}"),
            }
        }
        match decoded {
            Decoded::UnsupportedLink => assert!(!supported, "link type {link} called unsupported"),
            Decoded::Packet(p) => {
                assert!(supported, "a packet from unsupported link type {link}");
                assert!(p.proto == TCP || p.proto == UDP, "proto {}", p.proto);
                assert!(
                    matches!(
                        (p.src, p.dst),
                        (Addr::V4(_), Addr::V4(_)) | (Addr::V6(_), Addr::V6(_))
                    ),
                    "addresses of two families: {} {}",
                    p.src,
                    p.dst
                );
                if p.proto == UDP {
                    assert!(p.flags == 0 && p.seq == 0, "UDP with TCP fields");
                }
                assert!(
                    p.payload.len() <= MAX_DATAGRAM,
                    "payload {}",
                    p.payload.len()
                );
                for layer in p.encap.iter().flatten() {
                    assert!(LAYERS.contains(layer), "unknown layer {layer:?}");
                }
            }
            Decoded::NotIp | Decoded::Malformed | Decoded::Held => {
                assert!(supported, "link type {link} not called unsupported");
            }
        }
        assert!(
            dec.fragments_pending() <= MAX_PENDING,
            "pending grows past its bound"
        );
        assert!(
            dec.fragment_bytes_held() <= MAX_HELD_BYTES,
            "held bytes past their bound"
        );
        let now = dec.stats().fragments;
        assert!(now >= fragments, "fragment count went down");
        fragments = now;
    }
}
