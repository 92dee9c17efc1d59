//! GTPv1-U (3GPP TS 29.281 5.1): the header of one datagram to or from port 2152.
//!
//! `gtpu`: version 1 and PT 1 in the flags byte, a message type GTP-U uses (echo request and
//! response, error indication, supported extension headers notification, end marker, G-PDU), and
//! a length field that counts exactly the bytes after the 8-byte mandatory header. A G-PDU's
//! payload (after the optional fields and extension headers) starts with an IPv4 or IPv6 header.
//! The decoder opens G-PDUs itself; this probe names the tunnel's own flow.
//!
//! Meta: `gtp_message` ("g-pdu", "echo-request", ...).
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult, MAX_INPUT};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[Probe::single("gtpu", probe)
    .gated(&FIRST_BYTES)
    .answers(answers!["gtp_message"])];

/// Version 1, PT 1, reserved 0, any E/S/PN.
const FIRST_BYTES: [u8; 8] = [0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37];
const HEADER: usize = 8;
/// Sequence number, N-PDU number and next extension type, present when any of E/S/PN is set.
const OPTIONAL: usize = 4;
/// Extension headers walked before the inner packet (the decoder's bound too).
const MAX_EXTENSIONS: usize = 8;
const MESSAGES: [(u8, &str); 6] = [
    (1, "echo-request"),
    (2, "echo-response"),
    (26, "error-indication"),
    (31, "supported-extension-headers"),
    (254, "end-marker"),
    (255, "g-pdu"),
];

/// Where a G-PDU's inner packet starts, after the optional fields and extension headers.
fn inner_start(data: &[u8]) -> Option<usize> {
    let flags = *data.first()?;
    if flags & 0x07 == 0 {
        return Some(HEADER);
    }
    let mut next = *data.get(HEADER + OPTIONAL - 1)?;
    let mut at = HEADER + OPTIONAL;
    for _ in 0..MAX_EXTENSIONS {
        if next == 0 {
            return Some(at);
        }
        let len = usize::from(*data.get(at)?) * 4;
        if len == 0 {
            return None;
        }
        next = *data.get(at + len - 1)?;
        at += len;
    }
    None
}

pub fn probe(data: &[u8], _from_client: bool) -> ProbeResult {
    let ([flags, kind, hi, lo, ..], true) = (data, data.len() >= HEADER) else {
        return ProbeResult::no();
    };
    if !FIRST_BYTES.contains(flags) {
        return ProbeResult::no();
    }
    let Some(&(_, name)) = MESSAGES.iter().find(|(k, _)| k == kind) else {
        return ProbeResult::no();
    };
    let length = usize::from(u16::from_be_bytes([*hi, *lo]));
    let rest = data.len() - HEADER;
    // Exact, unless the engine cut a long datagram to its input bound.
    if length != rest && !(data.len() >= MAX_INPUT && length > rest) {
        return ProbeResult::no();
    }
    if *kind == 255 {
        let version = inner_start(data)
            .and_then(|at| data.get(at))
            .map(|b| b >> 4);
        if !matches!(version, Some(4 | 6)) {
            return ProbeResult::no();
        }
    }
    let mut meta = Meta::new();
    meta.insert("gtp_message".into(), json!(name));
    ProbeResult::hit(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    fn gtpu(flags: u8, kind: u8, body: &[u8]) -> Vec<u8> {
        let mut d = vec![flags, kind];
        d.extend_from_slice(&(body.len() as u16).to_be_bytes());
        d.extend_from_slice(&[0, 0, 0x10, 0x01]);
        d.extend_from_slice(body);
        d
    }

    fn ipv4() -> Vec<u8> {
        let mut ip = vec![0x45, 0, 0, 20, 0, 0, 0x40, 0, 64, 17, 0, 0];
        ip.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        ip
    }

    #[test]
    fn messages() {
        let r = probe(&gtpu(0x30, 255, &ipv4()), true);
        assert_eq!(r.meta["gtp_message"], "g-pdu");
        // S flag: sequence number, N-PDU, no extension; an echo request.
        assert_eq!(
            probe(&gtpu(0x32, 1, &[0, 7, 0, 0]), true).meta["gtp_message"],
            "echo-request"
        );
        // E flag with a PDU session container (TS 38.415), then IPv6.
        let mut body = vec![0, 0, 0, 0x85, 1, 0x10, 0x01, 0];
        body.extend_from_slice(&[0x60, 0, 0, 0]);
        assert_eq!(
            probe(&gtpu(0x34, 255, &body), false).meta["gtp_message"],
            "g-pdu"
        );
    }

    #[test]
    fn near_misses() {
        let ok = gtpu(0x30, 255, &ipv4());
        // Length one off, either way; a G-PDU carrying no IP; GTPv2-C flags; unknown type;
        // GTP' (PT 0).
        assert_eq!(probe(&ok[..ok.len() - 1], true).status, Status::No);
        assert_eq!(
            probe(&[ok.as_slice(), &[0]].concat(), true).status,
            Status::No
        );
        assert_eq!(
            probe(&gtpu(0x30, 255, &[0x12; 20]), true).status,
            Status::No
        );
        assert_eq!(probe(&gtpu(0x48, 1, &[0; 8]), true).status, Status::No);
        assert_eq!(probe(&gtpu(0x30, 16, &[0; 8]), true).status, Status::No);
        assert_eq!(probe(&gtpu(0x20, 255, &ipv4()), true).status, Status::No);
        // An extension header of length 0 (would loop) and a chain that never ends.
        assert_eq!(
            probe(&gtpu(0x34, 255, &[0, 0, 0, 0x85, 0, 0, 0, 0]), true).status,
            Status::No
        );
        let endless: Vec<u8> = [0, 0, 0, 0x85]
            .into_iter()
            .chain([1, 0, 0, 0x85].repeat(MAX_EXTENSIONS + 1))
            .chain([0x45; 20])
            .collect();
        assert_eq!(probe(&gtpu(0x34, 255, &endless), true).status, Status::No);
    }

    #[test]
    fn no_panic_on_hostile_shapes() {
        crate::detect::probes::vectors::never_panics("gtpu");
    }
}
