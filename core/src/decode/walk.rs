//! The decoder's driver: one loop over layer steps instead of Python's mutual recursion, so a
//! frame of any shape costs at most `MAX_STEPS` steps (each bounded) and no stack.

use super::{ip, link, tunnel, Addr, Encap, Packet};

/// Layers a walk may take in all: every layer is counted by a named bound (VLAN tags per link
/// header, MPLS labels, IPv6 extension headers, encapsulation depth); this is the backstop.
const MAX_STEPS: usize = 128;

/// VLAN tags after one link header (Ethernet, SLL, Cisco HDLC, GRE...).
pub(crate) const MAX_VLAN_TAGS: u8 = 4;
/// Tunnels (IP-in-IP, GRE, VXLAN, GTP-U) inside one another.
pub(crate) const MAX_ENCAP_DEPTH: u8 = 4;

/// Where the walk goes next: a header to read at an offset of the buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Step {
    Ethernet(usize),
    EtherType(u16, usize),
    Mpls(usize),
    /// PPP with optional HDLC-like address and control bytes; adds the "ppp" layer.
    Ppp(usize),
    PppProto(usize),
    IpByVersion(usize),
    Ipv4(usize),
    Ipv6(usize),
    /// The transport header after an IP header (or a reassembled datagram, at 0), between
    /// the addresses `Cx::ip` holds: a step is copied at every layer, and without them it is
    /// 16 bytes, not 48.
    Transport {
        proto: u8,
        off: usize,
    },
    Gre(usize),
    Gtpu(usize),
}

/// Identifies the datagram a fragment belongs to: (version, src, dst, id, protocol) as Python's
/// key; the address variant carries the version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FragKey {
    pub src: Addr,
    pub dst: Addr,
    pub ident: u32,
    pub proto: u8,
}

#[derive(Debug)]
pub(crate) struct Fragment<'a> {
    pub key: FragKey,
    /// Byte offset of this piece in the datagram's payload.
    pub offset: usize,
    pub more: bool,
    pub data: &'a [u8],
    pub encap: Encap,
    /// Tunnels already opened: the reassembled datagram continues at this depth.
    pub depth: u8,
    /// The GTP-U datagram the fragment came in (`Packet::tunnel`).
    pub tunnel: Option<Box<Packet<'a>>>,
}

#[derive(Debug)]
pub(crate) enum Walk<'a> {
    Packet(Packet<'a>),
    Fragment(Fragment<'a>),
    NotIp,
    Malformed,
}

pub(crate) enum Next<'a> {
    Go(Step),
    Done(Walk<'a>),
}

pub(crate) fn malformed<'a>() -> Next<'a> {
    Next::Done(Walk::Malformed)
}

pub(crate) fn not_ip<'a>() -> Next<'a> {
    Next::Done(Walk::NotIp)
}

/// State of one walk: the buffer, the current end (IP and UDP lengths shrink it), the layers
/// so far and the bounds' counters.
pub(crate) struct Cx<'a> {
    pub buf: &'a [u8],
    pub end: usize,
    /// Where the innermost IP header says its datagram ends (beyond `end` when cut).
    pub wire_end: usize,
    pub encap: Encap,
    pub depth: u8,
    pub tags: u8,
    /// The UDP packet a VXLAN or GTP-U attempt started from: the answer if what is inside turns
    /// out not to be a packet (Python's "inner is None or MALFORMED: return the UDP packet").
    /// Only the innermost matters, since a deeper attempt's packet supersedes it.
    pub fallback: Option<Packet<'a>>,
    /// The outermost GTP-U datagram opened (see `Packet::tunnel`).
    pub tunnel: Option<Packet<'a>>,
    /// Source and destination of the innermost IP header read (or of a reassembled
    /// datagram): those of the transport header after it.
    pub ip: (Addr, Addr),
}

impl<'a> Cx<'a> {
    pub fn layers(&self) -> Option<Encap> {
        (!self.encap.is_empty()).then(|| self.encap.clone())
    }
}

/// The packet of `buf` from `start`. A transport step takes its addresses from the IP header
/// read before it (`Cx::ip`), so a walk starts at one only through `walk_datagram`.
pub(crate) fn walk<'a>(buf: &'a [u8], start: Step, encap: Encap, depth: u8) -> Walk<'a> {
    const NONE: Addr = Addr::V4([0; 4]);
    walk_from(buf, start, encap, depth, (NONE, NONE))
}

/// A reassembled datagram of `proto` between `ip`, from its transport header at 0.
pub(crate) fn walk_datagram<'a>(
    buf: &'a [u8],
    proto: u8,
    ip: (Addr, Addr),
    encap: Encap,
    depth: u8,
) -> Walk<'a> {
    walk_from(buf, Step::Transport { proto, off: 0 }, encap, depth, ip)
}

fn walk_from<'a>(
    buf: &'a [u8],
    start: Step,
    encap: Encap,
    depth: u8,
    ip: (Addr, Addr),
) -> Walk<'a> {
    let mut cx = Cx {
        buf,
        end: buf.len(),
        wire_end: buf.len(),
        encap,
        depth,
        tags: 0,
        fallback: None,
        tunnel: None,
        ip,
    };
    let mut step = start;
    let mut steps = 0;
    let result = loop {
        if steps == MAX_STEPS {
            break Walk::Malformed;
        }
        steps += 1;
        let next = match step {
            Step::Ethernet(off) => link::ethernet(&mut cx, off),
            Step::EtherType(etype, off) => link::ethertype(&mut cx, etype, off),
            Step::Mpls(off) => link::mpls(&mut cx, off),
            Step::Ppp(off) => link::ppp(&mut cx, off),
            Step::PppProto(off) => link::ppp_proto(&mut cx, off),
            Step::IpByVersion(off) => ip::by_version(&mut cx, off),
            Step::Ipv4(off) => ip::ipv4(&mut cx, off),
            Step::Ipv6(off) => ip::ipv6(&mut cx, off),
            Step::Transport { proto, off } => ip::transport(&mut cx, proto, off),
            Step::Gre(off) => tunnel::gre(&mut cx, off),
            Step::Gtpu(off) => tunnel::gtpu(&mut cx, off),
        };
        match next {
            Next::Go(s) => step = s,
            Next::Done(w) => break w,
        }
    };
    // Most frames open no tunnel: their packet goes out as it came, without being moved
    // through a second match.
    if cx.tunnel.is_none() && cx.fallback.is_none() {
        return result;
    }
    let tunnel = cx.tunnel;
    match (result, cx.fallback) {
        (Walk::NotIp | Walk::Malformed, Some(mut udp)) => {
            // The datagram that carried no packet may be the tunnel itself (then it is the
            // answer alone) or a tunnel inside it.
            udp.tunnel = tunnel
                .filter(|t| depth_of(t) < depth_of(&udp))
                .map(Box::new);
            Walk::Packet(udp)
        }
        (Walk::Packet(mut p), _) => {
            p.tunnel = tunnel.map(Box::new);
            Walk::Packet(p)
        }
        (Walk::Fragment(mut f), _) => {
            f.tunnel = tunnel.map(Box::new);
            Walk::Fragment(f)
        }
        (w, _) => w,
    }
}

fn depth_of(p: &Packet<'_>) -> usize {
    p.encap.as_ref().map_or(0, Vec::len)
}
