//! RDP connection start (MS-RDPBCGR 2.2.1.1): a TPKT (RFC 1006) carrying an X.224 Connection
//! Request.
//!
//! Client side: TPKT version 3 with a length that the X.224 length indicator matches (LI = TPKT
//! length - 5), CR code 0xE0, class 0, and after the 7-byte X.224 header either a "Cookie:
//! mstshash=" line, a routing token, or an RDP_NEG_REQ (type 1, length 8). The cookie is
//! optional (MS-RDPBCGR 2.2.1.1: mstsc omits it when it has no user name hint, and pre-5.0
//! clients send neither cookie nor RDP_NEG_REQ): a bare CR counts when it is exactly an
//! 11-byte TPKT with DST-REF 0, class 0 and no variable part. Other TPKT users (ISO-TSAP on 102:
//! S7comm, MMS) send their CR with TSAP parameters (0xC0/0xC1/0xC2), so those are never RDP.
//! Server side: the Connection Confirm (0xD0, class 0) with an RDP_NEG_RSP or RDP_NEG_FAILURE,
//! or an empty confirm.
//!
//! Meta: `rdp_cookie` (the mstshash user hint, sanitised), `rdp_protocols` (requested security
//! protocols bitmask: 0 standard RDP, 1 TLS, 2 CredSSP, 8 RDSTLS...).
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};
use crate::text::clean_text;

pub static PROBES: &[Probe] = &[Probe::single("rdp", probe)];

const MSTSHASH: &[u8] = b"Cookie: mstshash=";
const ROUTING_TOKEN: &[u8] = b"Cookie: msts=";
/// How much of an unterminated cookie is kept.
const COOKIE_MAX: usize = 64;

/// The X.224 CR/CC header after the TPKT: LI, code, DST-REF (2), SRC-REF (2), class option.
const X224_HEADER_END: usize = 11;

/// (X.224 code, variable part) of a TPKT-framed COTP PDU at the start of `data`.
pub fn x224(data: &[u8]) -> Option<(u8, &[u8])> {
    let [3, 0, hi, lo, li, code, ..] = *data else {
        return None;
    };
    let length = usize::from(u16::from_be_bytes([hi, lo]));
    if data.len() < 11 || length < 11 || length > data.len() || usize::from(li) != length - 5 {
        return None;
    }
    Some((code & 0xf0, data.get(11..length)?))
}

fn find_crlf(data: &[u8]) -> Option<usize> {
    data.windows(2).position(|w| w == b"\r\n")
}

/// The bytes after the cookie line, or nothing when the line does not end.
fn after_line(rest: &[u8]) -> &[u8] {
    find_crlf(rest)
        .and_then(|end| rest.get(end + 2..))
        .unwrap_or_default()
}

/// RDP_NEG_REQ / RDP_NEG_RSP / RDP_NEG_FAILURE header: type in `types`, length 8.
fn neg_of(rest: &[u8], types: &[u8]) -> Option<u32> {
    let [kind, _flags, 8, 0, a, b, c, d, ..] = *rest else {
        return None;
    };
    types
        .contains(&kind)
        .then_some(u32::from_le_bytes([a, b, c, d]))
}

/// Class 0 with no extended formats or flow control (RDP's only class), as both the CR and the
/// CC state it in their class option byte.
fn class0(data: &[u8]) -> bool {
    data.get(X224_HEADER_END - 1) == Some(&0)
}

/// A Connection Request with nothing after its fixed part: RDP only when the TPKT is exactly
/// that header, with DST-REF 0 (X.224 13.3.4: zero in a CR).
fn bare_request(data: &[u8]) -> bool {
    data.len() == X224_HEADER_END && data.get(6..8) == Some(&[0, 0][..])
}

pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    let Some((code, mut rest)) = x224(data) else {
        return ProbeResult::no();
    };
    if !class0(data) {
        return ProbeResult::no();
    }
    let mut meta = Meta::new();
    if from_client && code == 0xe0 {
        if rest.is_empty() {
            return if bare_request(data) {
                ProbeResult::hit(meta)
            } else {
                ProbeResult::no()
            };
        }
        if let Some(cookie) = rest.strip_prefix(MSTSHASH) {
            let value = match find_crlf(cookie) {
                Some(end) => cookie.get(..end),
                None => cookie.get(..COOKIE_MAX.min(cookie.len())),
            };
            meta.insert(
                "rdp_cookie".into(),
                json!(clean_text(value.unwrap_or_default(), 64)),
            );
            rest = after_line(rest);
        } else if rest.starts_with(ROUTING_TOKEN) {
            rest = after_line(rest);
        }
        if let Some(protocols) = neg_of(rest, &[1]) {
            meta.insert("rdp_protocols".into(), json!(protocols));
        } else if !rest.is_empty() || meta.is_empty() {
            return ProbeResult::no();
        }
        return ProbeResult::hit(meta);
    }
    let confirm_ok = rest.is_empty() || neg_of(rest, &[2, 3]).is_some();
    if !from_client && code == 0xd0 && confirm_ok {
        return ProbeResult::hit(meta);
    }
    ProbeResult::no()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    /// TPKT + X.224 header (LI, code, DST-REF, SRC-REF, class 0) + `rest`.
    fn cotp(code: u8, rest: &[u8]) -> Vec<u8> {
        let length = 11 + rest.len();
        let mut out = vec![3, 0];
        out.extend_from_slice(&(length as u16).to_be_bytes());
        out.extend_from_slice(&[(length - 5) as u8, code, 0, 0, 0x12, 0x34, 0]);
        out.extend_from_slice(rest);
        out
    }

    #[test]
    fn connection_request_with_cookie_and_neg_req() {
        // MS-RDPBCGR 4.1.1: "Cookie: mstshash=eltons\r\n" + RDP_NEG_REQ for TLS | CredSSP.
        let mut rest = b"Cookie: mstshash=eltons\r\n".to_vec();
        rest.extend_from_slice(&[0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00]);
        let r = probe(&cotp(0xe0, &rest), true);
        assert!(r.is_match());
        assert_eq!(r.meta["rdp_cookie"], "eltons");
        assert_eq!(r.meta["rdp_protocols"], 3);
        assert_eq!(
            r.meta.keys().collect::<Vec<_>>(),
            ["rdp_cookie", "rdp_protocols"]
        );
        assert_eq!(probe(&cotp(0xe0, &rest), false).status, Status::No);
    }

    #[test]
    fn connection_request_variants() {
        let cookie_only = probe(&cotp(0xe0, b"Cookie: mstshash=bob\r\n"), true);
        assert_eq!(cookie_only.meta["rdp_cookie"], "bob");
        let token = probe(
            &cotp(
                0xe0,
                b"Cookie: msts=3640205228.15629.0000\r\n\x01\x00\x08\x00\x00\x00\x00\x00",
            ),
            true,
        );
        assert_eq!(token.meta["rdp_protocols"], 0);
        assert!(!token.meta.contains_key("rdp_cookie"));
        assert_eq!(
            probe(&cotp(0xe0, b"Cookie: msts=1\r\n"), true).status,
            Status::No
        );
        // A bare CR is RDP only when exact (see `bare_request`).
        let bare = cotp(0xe0, b"");
        assert!(probe(&bare, true).is_match() && probe(&bare, true).meta.is_empty());
        assert_eq!(probe(&bare, false).status, Status::No);
        let mut dst_ref = bare.clone();
        dst_ref[6] = 1;
        assert_eq!(probe(&dst_ref, true).status, Status::No);
        let mut trailing = bare.clone();
        trailing.extend_from_slice(&[3, 0, 0, 8, 2, 0xf0, 0x80, 0x7f]);
        assert_eq!(probe(&trailing, true).status, Status::No);
        let unterminated = probe(&cotp(0xe0, &[MSTSHASH, &[b'u'; 100]].concat()), true);
        assert_eq!(unterminated.meta["rdp_cookie"], "u".repeat(COOKIE_MAX));
    }

    #[test]
    fn other_tpkt_users_are_not_rdp() {
        // S7comm's COTP CR (class 0): SRC-REF 1, TPDU size 1024 (0xC0), calling TSAP 0x0100
        // (0xC1), called TSAP 0x0102 (0xC2: rack 0, slot 2), and the PLC's CC echoing them.
        let cr = [
            3, 0, 0, 0x16, 0x11, 0xe0, 0, 0, 0, 1, 0, 0xc0, 1, 0x0a, 0xc1, 2, 1, 0, 0xc2, 2, 1, 2,
        ];
        assert_eq!(probe(&cr, true).status, Status::No);
        let mut cc = cr;
        cc[5] = 0xd0;
        cc[6..10].copy_from_slice(&[0, 1, 0x44, 0x31]);
        assert_eq!(probe(&cc, false).status, Status::No);
        // The same CR with only a TSAP, and one asking class 2 (ISO 8073 over TCP, not RFC 1006's
        // class 0): neither is RDP.
        let tsap_only = cotp(0xe0, &[0xc1, 2, 1, 0]);
        assert_eq!(probe(&tsap_only, true).status, Status::No);
        let mut class2 = cotp(0xe0, b"");
        class2[10] = 0x20;
        assert_eq!(probe(&class2, true).status, Status::No);
        let mut cc_class2 = cotp(0xd0, b"");
        cc_class2[10] = 0x20;
        assert_eq!(probe(&cc_class2, false).status, Status::No);
        // S7comm data in a COTP DT TPDU.
        let dt = [
            3, 0, 0, 0x19, 2, 0xf0, 0x80, 0x32, 1, 0, 0, 0, 0, 0, 8, 0, 0, 0xf0, 0, 0, 1, 0, 1, 1,
            0xe0,
        ];
        assert_eq!(probe(&dt, true).status, Status::No);
    }

    #[test]
    fn connection_confirm() {
        // MS-RDPBCGR 4.1.2: RDP_NEG_RSP selecting TLS.
        let rsp = cotp(0xd0, &[0x02, 0x00, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00]);
        let r = probe(&rsp, false);
        assert!(r.is_match() && r.meta.is_empty());
        assert_eq!(probe(&rsp, true).status, Status::No);
        assert!(probe(&cotp(0xd0, &[]), false).is_match());
        assert_eq!(
            probe(&cotp(0xd0, &[0x04, 0, 8, 0, 0, 0, 0, 0]), false).status,
            Status::No
        );
    }

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("rdp");
    }
}
