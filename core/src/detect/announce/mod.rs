//! Announcements: a control connection's bytes naming an endpoint where another connection will
//! come (FTP's PASV/EPSV replies and PORT/EPRT commands, SDP's c=/m= lines in SIP, RTSP's
//! Transport header, DCE/RPC's endpoint-mapper towers). Pure parsers, bytes in, facts out; the flow layer (`flow::expect`) turns
//! the facts into expectations and the later connection into `ftp-data`, `rtp`, `rtcp` or
//! `dcerpc`.
//!
//! A parser sees one segment or datagram at a time (a line split across two segments is not
//! seen), at most `MAX_SCAN` bytes of it, lines of at most `MAX_LINE` bytes, and says at most
//! `MAX_ANNOUNCED` endpoints per segment. H.323 is not here: its H.245 addresses are ASN.1 PER
//! inside TPKT, not a line a few bytes can find.
#![forbid(unsafe_code)]

pub mod epm;
pub mod ftp;
pub mod rtsp;
pub mod sdp;

use crate::decode::{Addr, TCP, UDP};

/// Bytes of one segment looked at.
pub const MAX_SCAN: usize = 4096;
/// A longer line is skipped (a PASV reply or an SDP line is a few dozen bytes).
pub const MAX_LINE: usize = 512;
/// Endpoints taken from one segment at most.
pub const MAX_ANNOUNCED: usize = 8;

/// Which parser a control protocol's signature names (`announces = "..."`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parser {
    Ftp,
    Sdp,
    Rtsp,
    Epm,
}

impl Parser {
    pub const NAMES: &'static [&'static str] = &["epm", "ftp", "rtsp", "sdp"];

    pub fn name(self) -> &'static str {
        match self {
            Parser::Ftp => "ftp",
            Parser::Sdp => "sdp",
            Parser::Rtsp => "rtsp",
            Parser::Epm => "epm",
        }
    }

    pub fn by_name(name: &str) -> Option<Parser> {
        match name {
            "ftp" => Some(Parser::Ftp),
            "sdp" => Some(Parser::Sdp),
            "rtsp" => Some(Parser::Rtsp),
            "epm" => Some(Parser::Epm),
            _ => None,
        }
    }
}

/// Whose address an announced endpoint is, when the bytes give none (EPSV, RTSP 1.0 ports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The endpoint that sent the announcing bytes.
    Sender,
    /// The one that received them.
    Receiver,
}

/// One endpoint a control connection named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announced {
    /// The address in the bytes; None when they give none (or the unspecified address, which
    /// FTP clients read as "the control connection's").
    pub ip: Option<Addr>,
    pub port: u16,
    /// IP protocol number of the expected connection (TCP or UDP).
    pub proto: u8,
    /// What the expected connection is: "ftp-data", "rtp", "rtcp", "dcerpc".
    pub protocol: &'static str,
    /// The announcing message: "PASV", "EPSV", "PORT", "EPRT", "SDP", "RTSP", "epm".
    pub by: &'static str,
    pub owner: Owner,
}

/// The endpoints `payload` announces; `from_client`: the control connection's client sent it.
pub fn scan(parser: Parser, from_client: bool, payload: &[u8]) -> Vec<Announced> {
    let bytes = payload.get(..payload.len().min(MAX_SCAN)).unwrap_or(&[]);
    let mut out = match parser {
        Parser::Ftp => ftp::announced(bytes, from_client),
        Parser::Sdp => sdp::announced(bytes),
        Parser::Rtsp => rtsp::announced(bytes, from_client),
        Parser::Epm => epm::announced(bytes, from_client),
    };
    out.truncate(MAX_ANNOUNCED);
    out
}

/// The lines of `bytes` (CRLF or LF), at most `MAX_LINE` bytes each (longer ones are skipped),
/// without their line ends.
pub(crate) fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| l.len() <= MAX_LINE)
}

/// A decimal number of at most `max_digits` digits at the start of `s`, no larger than `max`:
/// the value and the digits' length.
pub(crate) fn number(s: &[u8], max_digits: usize, max: u32) -> Option<(u32, usize)> {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 || n > max_digits {
        return None;
    }
    let mut v: u32 = 0;
    for &d in s.get(..n)? {
        v = v.checked_mul(10)?.checked_add(u32::from(d - b'0'))?;
    }
    (v <= max).then_some((v, n))
}

/// A port at the start of `s` (1-65535): the port and its length.
pub(crate) fn port(s: &[u8]) -> Option<(u16, usize)> {
    let (v, n) = number(s, 5, 65535)?;
    let p = u16::try_from(v).ok()?;
    (p != 0).then_some((p, n))
}

/// An IPv4 or IPv6 address in text (bounded: the standard library's parsers on at most 64
/// bytes). The unspecified address is None.
pub(crate) fn address(s: &[u8]) -> Option<Addr> {
    if s.len() > 64 {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let ip: std::net::IpAddr = text.parse().ok()?;
    if ip.is_unspecified() {
        return None;
    }
    Some(match ip {
        std::net::IpAddr::V4(a) => Addr::V4(a.octets()),
        std::net::IpAddr::V6(a) => Addr::V6(a.octets()),
    })
}

pub(crate) const fn tcp() -> u8 {
    TCP
}

pub(crate) const fn udp() -> u8 {
    UDP
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_bounded() {
        assert_eq!(number(b"255,", 3, 255), Some((255, 3)));
        assert_eq!(number(b"256", 3, 255), None);
        assert_eq!(number(b"0255", 3, 255), None);
        assert_eq!(number(b"99999999999999999999", 3, 255), None);
        assert_eq!(port(b"65535|"), Some((65535, 5)));
        assert_eq!(port(b"65536"), None);
        assert_eq!(port(b"0"), None);
        assert_eq!(port(b""), None);
    }

    #[test]
    fn addresses_parse_or_are_refused() {
        assert_eq!(address(b"10.0.0.1"), Some(Addr::V4([10, 0, 0, 1])));
        assert_eq!(address(b"0.0.0.0"), None);
        assert_eq!(address(b"::"), None);
        assert_eq!(address(b"10.0.0.256"), None);
        assert!(matches!(address(b"fd77::1"), Some(Addr::V6(_))));
        assert_eq!(address(&[b'1'; 200]), None);
    }

    #[test]
    fn lines_longer_than_the_bound_are_skipped() {
        let mut long = vec![b'x'; MAX_LINE + 1];
        long.extend_from_slice(b"\r\nshort\r\n");
        assert_eq!(lines(&long).collect::<Vec<_>>(), vec![&b"short"[..], b""]);
    }

    #[test]
    fn scan_never_panics_on_any_prefix_of_hostile_bytes() {
        let samples: &[&[u8]] = &[
            b"227 Entering Passive Mode (10,0,0,1,195,80).\r\n",
            b"229 Entering Extended Passive Mode (|||50000|)\r\n",
            b"PORT 10,0,0,2,4,1\r\nEPRT |2|fd77::2|5282|\r\n",
            b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 6000 RTP/AVP 0\r\na=rtcp:7001\r\n",
            b"RTSP/1.0 200 OK\r\nTransport: RTP/AVP;unicast;client_port=4588-4589;server_port=6256-6257\r\n",
        ];
        for s in samples {
            for n in 0..=s.len() {
                for p in [Parser::Ftp, Parser::Sdp, Parser::Rtsp] {
                    for c in [true, false] {
                        let _ = scan(p, c, &s[..n]);
                    }
                }
            }
        }
        let junk: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for p in [Parser::Ftp, Parser::Sdp, Parser::Rtsp] {
            assert!(scan(p, false, &junk).len() <= MAX_ANNOUNCED);
        }
    }

    #[test]
    fn at_most_max_announced_per_segment() {
        let many = b"227 (10,0,0,1,1,1)\r\n".repeat(50);
        assert_eq!(scan(Parser::Ftp, false, &many).len(), MAX_ANNOUNCED);
    }
}
