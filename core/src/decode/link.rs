//! Link layers: where a frame of each link type starts, Ethernet and its tags, MPLS, PPPoE, PPP,
//! FDDI and the LLC/SNAP header it shares with 802.11 (`wlan`).

use super::bytes::{be16, be32, le32, span, u8_at};
use super::walk::{malformed, not_ip, Cx, Next, Step, MAX_VLAN_TAGS};
use super::{nflog, wlan, Encap};

pub(crate) const ETH_IPV4: u16 = 0x0800;
pub(crate) const ETH_IPV6: u16 = 0x86DD;
const ETH_VLAN: [u16; 4] = [0x8100, 0x88A8, 0x9100, 0x9200];
const ETH_MPLS: [u16; 2] = [0x8847, 0x8848];
const ETH_PPPOE_SESSION: u16 = 0x8864;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
const MAX_MPLS_LABELS: usize = 8;

const LINKTYPE_FDDI: u32 = 10;
/// Frame control, destination and source address.
const FDDI_HEADER: usize = 13;
/// DSAP and SSAP 0xAA (SNAP), control 0x03 (unnumbered information).
const LLC_SNAP: &[u8] = &[0xAA, 0xAA, 0x03];
/// LLC, OUI and EtherType.
const LLC_SNAP_LEN: usize = 8;
/// SNAP OUIs that mean "an EtherType follows": RFC 1042 and 802.1H bridge-tunnel.
const SNAP_OUIS: [&[u8]; 2] = [&[0, 0, 0], &[0, 0, 0xF8]];

/// Where the walk of one frame begins: the bytes to walk (the whole frame, or the part a
/// capture header before it and a frame check sequence after it leave), the first step, and
/// the layers so far.
#[derive(Debug)]
pub(crate) struct Start<'a> {
    pub buf: &'a [u8],
    pub step: Step,
    pub encap: Encap,
}

/// Why a frame of a supported link type has no walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Not an IP packet (ARP, an 802.11 management frame...).
    NotIp,
    Malformed,
    /// An encrypted 802.11 data frame (WEP, TKIP, CCMP, GCMP): its body cannot be read.
    Protected,
}

pub(crate) type Started<'a> = Result<Start<'a>, Stop>;

pub(crate) fn at(buf: &[u8], step: Step) -> Started<'_> {
    Ok(Start {
        buf,
        step,
        encap: Vec::new(),
    })
}

/// The first step for a frame of `linktype`, or `None` for a link type not decoded.
pub(crate) fn start(linktype: u32, frame: &[u8]) -> Option<Started<'_>> {
    match linktype {
        // PPI names the link type after its header; that one cannot be PPI again, so this
        // goes one level deep.
        wlan::LINKTYPE_PPI => Some(wlan::ppi(frame)),
        _ => start_inner(linktype, frame),
    }
}

/// `start` for every link type but PPI (which may carry any of these).
pub(crate) fn start_inner(linktype: u32, frame: &[u8]) -> Option<Started<'_>> {
    let len = frame.len();
    let bad = Some(Err(Stop::Malformed));
    let plain = |step| Some(at(frame, step));
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
            Some(etype) if len >= 4 => Some(Ok(Start {
                buf: frame,
                step: Step::EtherType(etype, 4),
                encap: vec!["chdlc"],
            })),
            _ => bad,
        },
        LINKTYPE_FDDI => Some(fddi(frame)),
        wlan::LINKTYPE_IEEE802_11 => Some(wlan::dot11(frame, false)),
        wlan::LINKTYPE_PRISM => Some(wlan::prism(frame)),
        wlan::LINKTYPE_RADIOTAP => Some(wlan::radiotap(frame)),
        wlan::LINKTYPE_AVS => Some(wlan::avs(frame)),
        nflog::LINKTYPE_NFLOG => Some(nflog::nflog(frame)),
        _ => None,
    }
}

/// BSD loopback: a 4-byte address family, in host order for DLT_NULL (which the file does not
/// record, hence the guess), network order for DLT_LOOP.
fn null(linktype: u32, frame: &[u8]) -> Started<'_> {
    let (Some(le), Some(be)) = (le32(frame, 0), be32(frame, 0)) else {
        return Err(Stop::Malformed);
    };
    let family = if linktype == 108 || le > 0xFFFF {
        be
    } else {
        le
    };
    match family {
        2 => at(frame, Step::Ipv4(4)),
        10 | 24 | 28 | 30 => at(frame, Step::Ipv6(4)),
        _ => Err(Stop::NotIp),
    }
}

/// FDDI (ANSI X3.139): frame control, destination and source addresses, then LLC for the
/// LLC frame classes; SMT and MAC frames carry no packet.
fn fddi(frame: &[u8]) -> Started<'_> {
    let Some(fc) = u8_at(frame, 0) else {
        return Err(Stop::Malformed);
    };
    if frame.len() < FDDI_HEADER {
        return Err(Stop::Malformed);
    }
    // Frame control CLFF ZZZZ: C any, L any, FF = 01 is an LLC frame (async or sync).
    if fc & 0x30 != 0x10 {
        return Err(Stop::NotIp);
    }
    llc(frame, FDDI_HEADER)
}

/// An 802.2 LLC header at `off` that is SNAP (RFC 1042, and 802.1H's bridge-tunnel OUI): the
/// EtherType it names goes to the same dispatch as Ethernet's. Other LLC (spanning tree,
/// NetBIOS, another OUI's protocols) is not IP.
pub(crate) fn llc(frame: &[u8], off: usize) -> Started<'_> {
    let Some(head) = frame.get(off..).and_then(|b| b.get(..LLC_SNAP_LEN)) else {
        return Err(Stop::Malformed);
    };
    let (Some(saps), Some(oui), Some(etype)) = (head.get(..3), head.get(3..6), be16(head, 6))
    else {
        return Err(Stop::Malformed);
    };
    if saps != LLC_SNAP || !SNAP_OUIS.contains(&oui) {
        return Err(Stop::NotIp);
    }
    at(frame, Step::EtherType(etype, off + LLC_SNAP_LEN))
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
