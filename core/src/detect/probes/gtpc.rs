//! GTP-C: the header of one datagram to or from port 2123.
//!
//! `gtpc`: a GTPv1-C header (3GPP TS 29.060 6: version 1, PT 1, spare 0, the S flag the control
//! plane always sets, any E/PN) or a GTPv2-C header (TS 29.274 5.1: version 2, any P/T/MP, spare bits
//! zero), a message type the control plane defines (TS 29.060 Table 1, TS 29.274 Table 6.1-1),
//! and a length field that counts exactly the bytes after the mandatory header (8 bytes in v1,
//! 4 in v2), or, for a v2 message with the piggyback flag, fewer: the piggybacked message follows.
//! The length is what tells a header from text that starts with the same two bytes ("220 ",
//! "DELETE").
//!
//! Meta: `gtp_version` (1, 2), `gtp_message` ("create-session-request", ...; "type-N" for the
//! rarer ones).
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult, MAX_INPUT};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[Probe::single("gtpc", probe)
    .gated(&FIRST_BYTES)
    .answers(&["gtp_message"])];

/// v1 with PT and S set (E, PN any); v2 with any of P, T and MP.
const FIRST_BYTES: [u8; 12] = [
    0x32, 0x33, 0x36, 0x37, 0x40, 0x44, 0x48, 0x4c, 0x50, 0x54, 0x58, 0x5c,
];

/// GTPv1-C types: path management, tunnel management, location and mobility management, MBMS,
/// charging (TS 29.060 Table 1; 26, error indication, and 255, the G-PDU, are GTP-U's).
fn v1_type(kind: u8) -> bool {
    matches!(kind, 1..=7 | 16..=23 | 27..=37 | 48..=63 | 70 | 96..=129 | 240 | 241)
}

/// GTPv2-C types of TS 29.274 Table 6.1-1.
fn v2_type(kind: u8) -> bool {
    matches!(
        kind,
        1..=3
            | 32..=41
            | 64..=73
            | 95..=104
            | 128..=141
            | 149..=171
            | 176
            | 177
            | 179
            | 180
            | 200
            | 201
            | 211
            | 212
            | 231..=240
    )
}

fn name(version: u8, kind: u8) -> String {
    let named = match (version, kind) {
        (_, 1) => "echo-request",
        (_, 2) => "echo-response",
        (_, 3) => "version-not-supported",
        (1, 16) => "create-pdp-context-request",
        (1, 17) => "create-pdp-context-response",
        (1, 18) => "update-pdp-context-request",
        (1, 19) => "update-pdp-context-response",
        (1, 20) => "delete-pdp-context-request",
        (1, 21) => "delete-pdp-context-response",
        (2, 32) => "create-session-request",
        (2, 33) => "create-session-response",
        (2, 34) => "modify-bearer-request",
        (2, 35) => "modify-bearer-response",
        (2, 36) => "delete-session-request",
        (2, 37) => "delete-session-response",
        (2, 95) => "create-bearer-request",
        (2, 96) => "create-bearer-response",
        (2, 97) => "update-bearer-request",
        (2, 98) => "update-bearer-response",
        (2, 99) => "delete-bearer-request",
        (2, 100) => "delete-bearer-response",
        (2, 170) => "release-access-bearers-request",
        (2, 171) => "release-access-bearers-response",
        (2, 176) => "downlink-data-notification",
        (2, 177) => "downlink-data-notification-ack",
        _ => return format!("type-{kind}"),
    };
    named.to_string()
}

pub fn probe(data: &[u8], _from_client: bool) -> ProbeResult {
    let ([flags, kind, hi, lo, ..], true) = (data, data.len() >= 8) else {
        return ProbeResult::no();
    };
    let length = usize::from(u16::from_be_bytes([*hi, *lo]));
    // A long datagram the engine cut to its input bound shows less than its length says.
    let cut = data.len() >= MAX_INPUT;
    let version = flags >> 5;
    let fits = match version {
        1 if flags & 0x1a == 0x12 && v1_type(*kind) => {
            let rest = data.len() - 8;
            length == rest || (cut && length > rest)
        }
        2 if flags & 0x03 == 0 && v2_type(*kind) => {
            let rest = data.len() - 4;
            let piggyback = flags & 0x10 != 0;
            length == rest || (piggyback && length < rest) || (cut && length > rest)
        }
        _ => false,
    };
    if !fits {
        return ProbeResult::no();
    }
    let mut meta = Meta::new();
    meta.insert("gtp_version".into(), json!(version));
    meta.insert("gtp_message".into(), json!(name(version, *kind)));
    ProbeResult::hit(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::vectors::text;
    use crate::detect::probes::Status;

    /// A v1 header with a TEID and the sequence number, N-PDU and next-extension fields.
    fn v1(flags: u8, kind: u8, ies: &[u8]) -> Vec<u8> {
        let mut d = vec![flags, kind];
        d.extend_from_slice(&((ies.len() + 4) as u16).to_be_bytes());
        d.extend_from_slice(&[0, 0, 0, 1, 0x12, 0x34, 0, 0]);
        d.extend_from_slice(ies);
        d
    }

    /// A v2 header with a TEID (T flag) and a sequence number.
    fn v2(flags: u8, kind: u8, ies: &[u8]) -> Vec<u8> {
        let mut d = vec![flags, kind];
        d.extend_from_slice(&((ies.len() + 8) as u16).to_be_bytes());
        d.extend_from_slice(&[0, 0, 0, 1, 0, 0, 7, 0]);
        d.extend_from_slice(ies);
        d
    }

    fn message(data: &[u8]) -> (String, String) {
        let r = probe(data, true);
        assert_eq!(r.status, Status::Match, "{data:02x?}");
        let message = text(&r, "gtp_message").unwrap_or_default();
        (r.meta["gtp_version"].to_string(), message)
    }

    #[test]
    fn control_messages_of_both_versions() {
        assert_eq!(
            message(&v1(0x32, 16, &[0x0e, 0x01])),
            ("1".into(), "create-pdp-context-request".into())
        );
        // E flag: an extension header is announced; PN too.
        assert_eq!(message(&v1(0x37, 1, &[])).1, "echo-request");
        assert_eq!(
            message(&v2(0x48, 32, &[1, 0, 8, 0])),
            ("2".into(), "create-session-request".into())
        );
        assert_eq!(message(&v2(0x4c, 99, &[])).1, "delete-bearer-request");
        assert_eq!(message(&v1(0x32, 50, &[])).1, "type-50");
        // Piggybacking (P flag): a second message follows the first.
        let mut two = v2(0x58, 33, &[2, 0, 2, 0, 16]);
        two.extend_from_slice(&v2(0x48, 96, &[]));
        assert_eq!(message(&two).1, "create-session-response");
    }

    #[test]
    fn text_and_other_headers_are_not_gtp_control() {
        for data in [
            &b"220 mail.example.test ESMTP\r\n"[..],
            b"DELETE /x HTTP/1.1\r\n\r\n",
            b"23 bottles of beer",
        ] {
            assert_eq!(probe(data, true).status, Status::No, "{data:?}");
        }
        let ok = v1(0x32, 16, &[0x0e, 0x01]);
        // The length one off either way; S clear (GTP-U's echo form); a G-PDU; GTP' (PT 0).
        assert_eq!(probe(&ok[..ok.len() - 1], true).status, Status::No);
        assert_eq!(probe(&[&ok[..], &[0]].concat(), true).status, Status::No);
        assert_eq!(probe(&v1(0x30, 1, &[]), true).status, Status::No);
        assert_eq!(probe(&v1(0x32, 255, &[]), true).status, Status::No);
        assert_eq!(probe(&v1(0x22, 1, &[]), true).status, Status::No);
        // v2: spare bits set; a longer datagram without the P flag; an unassigned type.
        assert_eq!(probe(&v2(0x49, 32, &[]), true).status, Status::No);
        assert_eq!(
            probe(&[&v2(0x48, 32, &[])[..], &[0; 4]].concat(), true).status,
            Status::No
        );
        assert_eq!(probe(&v2(0x48, 50, &[]), true).status, Status::No);
        assert_eq!(probe(&[0x32, 1, 0], true).status, Status::No);
    }
}
