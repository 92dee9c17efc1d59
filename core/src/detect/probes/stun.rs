//! STUN (RFC 5389/8489, classic RFC 3489): one message header and its attribute list.
//!
//! `stun`: one UDP datagram, or the first bytes of a TCP stream (messages back to back). The
//! header's two top bits are zero; with the magic cookie 0x2112A442 any known method is
//! accepted, without it (RFC 3489) only Binding and Shared Secret. The attributes must tile the
//! message body exactly (type, length, padding to 4), which random bytes almost never do. One
//! leniency, with the cookie only: the last attribute may end the message unpadded (its length
//! then not a multiple of 4), as WhatsApp's TURN servers and clients send their 0x4000
//! attributes and as Wireshark's dissector accepts them; without the cookie the length must be
//! a multiple of 4.
//!
//! Meta: `stun_method` ("binding", "allocate"...), `stun_class` ("request", "success"...),
//! `stun_software` (attribute SOFTWARE, sanitised).
#![forbid(unsafe_code)]

use super::{byte_range, Probe, ProbeResult};
use crate::meta::{json, Meta};
use crate::text::clean_text;

/// A STUN message type has its two top bits clear (RFC 8489 6): the engine skips other units.
const FIRST: &[u8] = &byte_range::<64>(0);

pub static PROBES: &[Probe] = &[Probe::single("stun", probe)
    .gated(FIRST)
    .answers(answers!["stun_class", "stun_software"])];

const MAGIC: u32 = 0x2112_A442;
const MAX_ATTRIBUTES: usize = 64;
const ATTR_SOFTWARE: u16 = 0x8022;
const CLASSES: [&str; 4] = ["request", "indication", "success", "error"];

fn method_name(method: u16) -> Option<&'static str> {
    Some(match method {
        0x001 => "binding",
        0x002 => "shared-secret",
        0x003 => "allocate",
        0x004 => "refresh",
        0x006 => "send",
        0x007 => "data",
        0x008 => "create-permission",
        0x009 => "channel-bind",
        0x00A => "connect",
        0x00B => "connection-bind",
        0x00C => "connection-attempt",
        _ => return None,
    })
}

fn be16(data: &[u8], off: usize) -> Option<u16> {
    let b = data.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// One STUN message at the start of a buffer.
#[derive(Debug, PartialEq)]
pub struct Message<'a> {
    pub method: &'static str,
    pub class: &'static str,
    /// Header plus body.
    pub length: usize,
    /// The first SOFTWARE attribute's value, at most 128 bytes of it.
    pub software: Option<&'a [u8]>,
    /// RFC 3489 (no magic cookie).
    pub classic: bool,
}

/// Header and attributes of the STUN message at the start of `data`, or None.
pub fn parse(data: &[u8]) -> Option<Message<'_>> {
    let head = data.get(..20)?;
    let mtype = u16::from_be_bytes([head[0], head[1]]);
    let length = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let cookie = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    if mtype & 0xC000 != 0 || 20 + length > data.len() {
        return None;
    }
    if length & 3 != 0 && cookie != MAGIC {
        return None;
    }
    let method = (mtype & 0x000F) | ((mtype & 0x00E0) >> 1) | ((mtype & 0x3E00) >> 2);
    let cls = usize::from(((mtype & 0x0010) >> 4) | ((mtype & 0x0100) >> 7));
    if cookie != MAGIC && (!matches!(method, 1 | 2) || cls == 1) {
        return None;
    }
    let method = method_name(method)?;
    let end = 20 + length;
    let (mut off, mut count) = (20usize, 0usize);
    let mut software = None;
    while off < end {
        if off + 4 > end || count == MAX_ATTRIBUTES {
            return None;
        }
        let atype = be16(data, off)?;
        let alen = usize::from(be16(data, off + 2)?);
        if atype == ATTR_SOFTWARE && software.is_none() {
            // Python slices: a value running past the buffer is cut, not refused.
            let start = (off + 4).min(data.len());
            let stop = (off + 4 + alen.min(128)).min(data.len());
            software = data.get(start..stop);
        }
        count += 1;
        if length & 3 != 0 && off + 4 + alen == end {
            // The unpadded last attribute (with the cookie: checked above).
            off = end;
            break;
        }
        off += 4 + ((alen + 3) & !3);
    }
    if off != end {
        return None;
    }
    Some(Message {
        method,
        class: CLASSES[cls],
        length: end,
        software,
        classic: cookie != MAGIC,
    })
}

pub fn probe(data: &[u8], _from_client: bool) -> ProbeResult {
    let Some(msg) = parse(data) else {
        return ProbeResult::no();
    };
    // Classic STUN has no cookie to vouch for it: demand a non-empty, exactly tiled body.
    if msg.classic && msg.length == 20 {
        return ProbeResult::no();
    }
    let mut meta = Meta::new();
    meta.insert("stun_method".into(), json!(msg.method));
    meta.insert("stun_class".into(), json!(msg.class));
    if let Some(sw) = msg.software.filter(|s| !s.is_empty()) {
        meta.insert("stun_software".into(), json!(clean_text(sw, 128)));
    }
    ProbeResult::hit(meta)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::detect::probes::vectors::replay;
    use crate::detect::probes::Status;

    #[test]
    fn python_vectors() {
        replay("stun");
    }

    /// A message with the cookie whose last attribute ends it unpadded (WhatsApp's TURN
    /// Allocate: a 102-byte 0x4000 attribute, length 106) is STUN; the same without the cookie,
    /// or with the short attribute anywhere but last, is not.
    #[test]
    fn an_unpadded_last_attribute_with_the_cookie() {
        let message = |cookie: u32, attrs: &[(u16, usize)]| {
            let body: usize = attrs.iter().map(|(_, n)| 4 + n).sum();
            let mut m = vec![0x00, 0x03];
            m.extend_from_slice(&(body as u16).to_be_bytes());
            m.extend_from_slice(&cookie.to_be_bytes());
            m.extend_from_slice(&[7; 12]);
            for &(t, n) in attrs {
                m.extend_from_slice(&t.to_be_bytes());
                m.extend_from_slice(&(n as u16).to_be_bytes());
                m.extend(std::iter::repeat_n(0xA5, n));
            }
            m
        };
        let whatsapp = message(MAGIC, &[(0x4000, 102)]);
        assert_eq!(whatsapp.len(), 126);
        let r = probe(&whatsapp, true);
        assert_eq!(r.status, Status::Match);
        assert_eq!(r.meta["stun_method"], "allocate");
        assert_eq!(r.meta["stun_class"], "request");
        assert_eq!(
            probe(&message(0x1234_5678, &[(0x4000, 102)]), true).status,
            Status::No
        );
        // Unpadded but not last: the next attribute does not start where the padding says.
        let inner = message(MAGIC, &[(0x4000, 6), (0x0003, 4)]);
        assert_eq!(probe(&inner, true).status, Status::No);
        // Padded and tiled as the RFC has it: still STUN.
        assert_eq!(
            probe(&message(MAGIC, &[(0x4000, 100)]), true).status,
            Status::Match
        );
    }

    #[test]
    fn no_panic_on_hostile_shapes() {
        crate::detect::probes::vectors::never_panics("stun");
    }

    #[test]
    fn matching_vectors_start_with_a_first_byte() {
        crate::detect::probes::vectors::first_bytes_hold("stun");
    }

    /// RFC 5769 2.1: the sample Binding request (SOFTWARE "STUN test client", PRIORITY,
    /// ICE-CONTROLLED, USERNAME, MESSAGE-INTEGRITY, FINGERPRINT).
    const RFC5769_REQUEST: &str = "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf";

    #[test]
    fn rfc5769_binding_request() {
        let data = const_hex::decode(RFC5769_REQUEST).unwrap();
        let r = probe(&data, true);
        assert_eq!(r.status, Status::Match);
        assert_eq!(
            r.meta,
            json!({"stun_method": "binding", "stun_class": "request", "stun_software": "STUN test client"})
                .as_object()
                .cloned()
                .unwrap()
        );
        // One byte short of the announced length: no longer a message.
        assert_eq!(probe(&data[..data.len() - 1], true).status, Status::No);
    }

    #[test]
    fn classic_binding_needs_a_body() {
        // RFC 3489 Binding Request, no cookie, empty body: too weak.
        let mut m = vec![0x00, 0x01, 0x00, 0x00];
        m.extend_from_slice(&[0x5a; 16]);
        assert_eq!(probe(&m, true).status, Status::No);
        // With a CHANGE-REQUEST attribute (0x0003, 4 bytes) it tiles exactly.
        m[3] = 8;
        m.extend_from_slice(&[0x00, 0x03, 0x00, 0x04, 0, 0, 0, 0]);
        assert_eq!(probe(&m, true).status, Status::Match);
    }

    #[test]
    fn software_with_controls_is_escaped() {
        // Binding success with SOFTWARE "a\x1bb" (3 bytes, padded to 4).
        let mut m = const_hex::decode("010100082112a442000102030405060708090a0b").unwrap();
        m.extend_from_slice(&[0x80, 0x22, 0x00, 0x03, b'a', 0x1b, b'b', 0]);
        let r = probe(&m, false);
        assert_eq!(r.meta.get("stun_software"), Some(&json!("a\\x1bb")));
        assert_eq!(r.meta.get("stun_class"), Some(&json!("success")));
    }
}
