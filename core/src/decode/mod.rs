//! Link, IP and transport decoding: frame bytes in, a packet out (tunnels unwrapped, IP
//! fragments reassembled, every layer bounded).
//!
//! INTERFACE (implemented by the decode work; the pipeline codes against exactly this):
//!
//! ```ignore
//! let mut dec = Decoder::new();                  // owns the defragmenter (bounded)
//! match dec.decode(ts, linktype, frame) {
//!     Decoded::Packet(p) => ...,                 // p.payload borrows the frame or the reassembled datagram
//!     Decoded::NotIp => stats.non_ip += 1,       // a supported link type carrying no TCP/UDP (or an encrypted 802.11 body)
//!     Decoded::UnsupportedLink => stats.unsupported_link += 1,
//!     Decoded::Malformed => stats.malformed += 1,
//!     Decoded::Held => {}                        // a fragment kept (or dropped) awaiting the rest
//! }
//! dec.stats()   // DecodeStats { fragments, fragments_dropped, ... }
//! ```
#![forbid(unsafe_code)]

pub(crate) mod bytes;
mod decoder;
mod fragments;
mod ip;
mod link;
mod nflog;
mod peek;
mod tunnel;
mod walk;
mod wlan;

pub use decoder::Decoder;
pub use peek::{peek, Peeked};

pub const TCP: u8 = 6;
pub const UDP: u8 = 17;

/// An IP address as captured (4 or 16 bytes); the flow key is built from these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Addr {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl Addr {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Addr::V4(a) => a,
            Addr::V6(a) => a,
        }
    }

    /// The address as `IpAddr`'s `Display` writes it (dotted decimal; RFC 5952 for IPv6, an
    /// IPv4-mapped one as `::ffff:192.0.2.1`), without the formatter: every record spells two.
    pub fn text(&self) -> String {
        match self {
            Addr::V4(a) => crate::text::ipv4_text(a),
            Addr::V6(a) => {
                let mut out = String::with_capacity(39);
                crate::text::push_ipv6(&mut out, a, true);
                out
            }
        }
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.text())
    }
}

/// The outer layers a packet was found inside, outermost first ("vlan" is not a layer here:
/// only tunnels and link encapsulations that Python listed: chdlc, ppp, pppoe, mpls, vxlan,
/// ipip, 6in4, ip6ip6, gre, gtpu).
pub type Encap = Vec<&'static str>;

#[derive(Clone, Debug, PartialEq)]
pub struct Packet<'a> {
    /// TCP or UDP.
    pub proto: u8,
    pub src: Addr,
    pub dst: Addr,
    pub sport: u16,
    pub dport: u16,
    /// TCP flags (0 for UDP).
    pub flags: u8,
    /// TCP sequence number (0 for UDP).
    pub seq: u32,
    /// Transport payload (cut to what was captured and to the IP/UDP length).
    pub payload: &'a [u8],
    /// Transport payload length as the IP (or UDP) header states it: what was sent, even when
    /// a snap length cut `payload` short. Never less than `payload.len()`.
    pub wire_len: u32,
    /// None when the packet was not inside a tunnel or link encapsulation.
    pub encap: Option<Encap>,
    /// The outermost GTP-U datagram (UDP to 2152) this packet was found in: the tunnel's own
    /// flow, reported beside the inner one as Zeek does. Its payload is the GTP-U message.
    pub tunnel: Option<Box<Packet<'a>>>,
}

#[derive(Debug)]
pub enum Decoded<'a> {
    /// A TCP/UDP packet; also the GTP-U datagram alone when what it carries is an IP fragment
    /// kept for reassembly (the tunnel's flow still counts it).
    Packet(Packet<'a>),
    /// A supported link type carrying no TCP/UDP (ARP, ICMP, ...).
    NotIp,
    UnsupportedLink,
    Malformed,
    /// An IP fragment kept for reassembly (or dropped by a bound: see `DecodeStats`).
    Held,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    pub fragments: u64,
    pub fragments_dropped: u64,
    /// Encrypted (WEP/WPA) 802.11 data frames: their body cannot be read, so they are answered
    /// `NotIp` (a frame the link type carries but no packet of ours), and counted here too.
    pub protected: u64,
}

/// Appended in the order support came (the fuzz target's selector byte indexes this list).
/// FDDI 10, 802.11 105, Prism 119, radiotap 127, AVS 163, PPI 192, NFLOG 239.
pub const SUPPORTED_LINKTYPES: &[u32] = &[
    0, 1, 9, 12, 14, 50, 101, 104, 108, 113, 228, 229, 276, 10, 105, 119, 127, 163, 192, 239,
];
