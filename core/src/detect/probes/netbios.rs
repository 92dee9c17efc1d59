//! NetBIOS over TCP/IP (RFC 1001/1002): name service, datagram service, session service.
//!
//! - `netbios_ns`: a name-service packet is DNS-shaped, but its question name is a NetBIOS name:
//!   one 32-character label of the letters A-P (first-level encoding), type NB or NBSTAT.
//! - `netbios_dgm`: a datagram-service header (types 0x10-0x16) whose length holds, followed for
//!   direct/broadcast datagrams by two encoded names ([`datagram_data`] gives the user data, an
//!   SMB mailslot message, to the smb probe).
//! - `netbios_ssn`: a session request (0x81) carrying the called and calling encoded names, or a
//!   positive/negative response or keepalive of the exact length.
//!
//! Meta: `netbios_type` ("ns", "dgm", "ssn"), `netbios_name` (decoded, sanitised).
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{Meta, Value};
use crate::text::clean_text;

pub static PROBES: &[Probe] = &[
    Probe::single("netbios_ns", probe_ns),
    // datagram message types
    Probe::single("netbios_dgm", probe_dgm).gated(&[0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16]),
    // session packet types
    Probe::single("netbios_ssn", probe_ssn).gated(&[0x81, 0x82, 0x83, 0x84]),
];

const ENCODED_LEN: usize = 32;
const MAX_SCOPE_LABELS: usize = 16;
const NAME_LIMIT: usize = 16;

fn be16(data: &[u8], off: usize) -> Option<u16> {
    let b = data.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// First-level decoding of a 32-letter name ("EOEBFDEGEJEMEFCACACACACACACACAAA" -> "NASFILE"):
/// the 15 name bytes as Latin-1 text without their padding (the 16th is the suffix type). Names
/// are padded with spaces; the wildcard `*` of a node status request with NULs (RFC 1002 4.2.17).
pub fn decode_name(encoded: &[u8]) -> Option<String> {
    if encoded.len() != ENCODED_LEN || !encoded.iter().all(|b| (0x41..=0x50).contains(b)) {
        return None;
    }
    let text: String = encoded
        .chunks_exact(2)
        .take(15)
        .map(|p| char::from(((p[0] - 0x41) << 4) | (p[1] - 0x41)))
        .collect();
    Some(text.trim_end_matches([' ', '\0']).to_owned())
}

/// An encoded name as a label sequence (with an optional scope) at `off`: (name, offset after).
fn encoded_name(data: &[u8], off: usize) -> Option<(String, usize)> {
    if data.get(off) != Some(&(ENCODED_LEN as u8)) {
        return None;
    }
    let name = decode_name(data.get(off + 1..off + 1 + ENCODED_LEN)?)?;
    let mut off = off + 1 + ENCODED_LEN;
    for _ in 0..MAX_SCOPE_LABELS {
        let length = *data.get(off)?;
        if length == 0 {
            return Some((name, off + 1));
        }
        if length > 63 {
            return None;
        }
        off += 1 + usize::from(length);
    }
    None
}

fn meta(kind: &str, name: Option<&str>) -> Meta {
    let mut meta = Meta::new();
    meta.insert("netbios_type".into(), Value::from(kind));
    if let Some(name) = name {
        meta.insert(
            "netbios_name".into(),
            Value::from(clean_text(name.as_bytes(), NAME_LIMIT)),
        );
    }
    meta
}

/// RFC 1002 4.2.1.1: the R bit is set in responses, which only the answering node sends; a
/// registration or a query (broadcast or not) comes from the client side.
pub fn probe_ns(data: &[u8], from_client: bool) -> ProbeResult {
    if data.len() < 12 + 1 + ENCODED_LEN + 1 + 4 || (data[2] >> 7 == 1) == from_client {
        return ProbeResult::no();
    }
    let word = |i: usize| be16(data, 2 * i).unwrap_or_default();
    let (flags, qd, an, ns, ar) = (word(1), word(2), word(3), word(4), word(5));
    let (qd, an) = (u32::from(qd), u32::from(an));
    let opcode = (flags >> 11) & 0xF;
    if !matches!(opcode, 0 | 5 | 6 | 7 | 8) || qd + an > 4 || ns > 4 || ar > 4 || qd + an == 0 {
        return ProbeResult::no();
    }
    let Some((name, end)) = encoded_name(data, 12) else {
        return ProbeResult::no();
    };
    match (be16(data, end), be16(data, end + 2)) {
        (Some(0x20 | 0x21), Some(1)) => ProbeResult::hit(meta("ns", Some(&name))),
        _ => ProbeResult::no(),
    }
}

/// (source name, user data) of a direct/broadcast datagram-service packet, else None.
pub fn datagram_data(data: &[u8]) -> Option<(String, &[u8])> {
    if data.len() < 14 || !matches!(data[0], 0x10..=0x12) {
        return None;
    }
    if 14 + usize::from(be16(data, 10)?) != data.len() {
        return None;
    }
    let (src, src_end) = encoded_name(data, 14)?;
    let (_, dst_end) = encoded_name(data, src_end)?;
    Some((src, data.get(dst_end..)?))
}

pub fn probe_dgm(data: &[u8], _from_client: bool) -> ProbeResult {
    if data.len() >= 11 && matches!(data[0], 0x13..=0x16) {
        // error / query datagrams
        let ok = if data[0] == 0x13 {
            data.len() == 11
        } else {
            encoded_name(data, 10).is_some()
        };
        return if ok {
            ProbeResult::hit(meta("dgm", None))
        } else {
            ProbeResult::no()
        };
    }
    match datagram_data(data) {
        Some((src, _)) => ProbeResult::hit(meta("dgm", Some(&src))),
        None => ProbeResult::no(),
    }
}

pub fn probe_ssn(data: &[u8], from_client: bool) -> ProbeResult {
    let (Some(&kind), Some(&flags), Some(length)) = (data.first(), data.get(1), be16(data, 2))
    else {
        return ProbeResult::no();
    };
    if flags & 0xFE != 0 {
        return ProbeResult::no();
    }
    if kind == 0x81 && from_client {
        let called = encoded_name(data, 4);
        let calling = called
            .as_ref()
            .and_then(|(_, end)| encoded_name(data, *end));
        return match (called, calling) {
            (Some((name, _)), Some(_)) if length >= 68 => {
                ProbeResult::hit(meta("ssn", Some(&name)))
            }
            _ => ProbeResult::no(),
        };
    }
    if !from_client && matches!((kind, length), (0x82, 0) | (0x83, 1) | (0x84, 6)) {
        return ProbeResult::hit(meta("ssn", None));
    }
    ProbeResult::no()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::{vectors, Status};

    #[test]
    fn python_vectors() {
        for name in ["netbios_ns", "netbios_dgm", "netbios_ssn"] {
            vectors::replay(name);
        }
    }

    /// Every matching vector starts with one of the gated first bytes.
    #[test]
    fn gates_hold_on_vectors() {
        for name in ["netbios_dgm", "netbios_ssn"] {
            crate::detect::probes::vectors::first_bytes_hold(name);
        }
    }

    /// RFC 1001 §14.1 first-level encoding, padded with spaces to 15 bytes plus the suffix.
    fn encode(name: &[u8], suffix: u8) -> Vec<u8> {
        let mut raw = name.to_vec();
        raw.resize(15, b' ');
        raw.push(suffix);
        let mut out = vec![32u8];
        for b in raw {
            out.extend([0x41 + (b >> 4), 0x41 + (b & 0xF)]);
        }
        out.push(0);
        out
    }

    #[test]
    fn decode_examples() {
        assert_eq!(
            decode_name(b"EOEBFDEGEJEMEFCACACACACACACACAAA").as_deref(),
            Some("NASFILE")
        );
        assert_eq!(decode_name(b"EOEBFDEGEJEMEFCACACACACACACACAA"), None);
        assert_eq!(decode_name(b"EOEBFDEGEJEMEFCACACACACACACACAAQ"), None);
        // A node status request's wildcard: `*` and fifteen NULs (nmblookup -A, Windows nbtstat -A).
        assert_eq!(
            decode_name(b"CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").as_deref(),
            Some("*")
        );
    }

    /// RFC 1002 §4.2.12 name query request for WORKGROUP<1d>, broadcast.
    #[test]
    fn name_query() {
        let mut q = vec![0x82, 0x28, 0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend(encode(b"WORKGROUP", 0x1D));
        q.extend([0, 0x20, 0, 1]);
        let got = probe_ns(&q, true);
        assert_eq!(
            Value::from(got.meta),
            serde_json::json!({"netbios_type": "ns", "netbios_name": "WORKGROUP"})
        );
        assert_eq!(probe_ns(&q[..q.len() - 1], true).status, Status::No);
        // A request comes from the client side; the R bit marks the answering node's response.
        assert_eq!(probe_ns(&q, false).status, Status::No);
        let mut r = q.clone();
        r[2] |= 0x80;
        r[7] = 1; // one answer
        assert_eq!(probe_ns(&r, false).status, Status::Match);
        assert_eq!(probe_ns(&r, true).status, Status::No);
    }

    /// RFC 1002 §4.4.2 session request with a Latin-1 and a control byte in the called name.
    #[test]
    fn session_request() {
        let mut s = vec![0x81, 0, 0, 68];
        s.extend(encode(b"FILE\xe9\x1b", 0x20));
        s.extend(encode(b"CLIENT", 0));
        let got = probe_ssn(&s, true);
        assert_eq!(
            Value::from(got.meta),
            serde_json::json!({"netbios_type": "ssn", "netbios_name": "FILE\u{e9}\\x1b"})
        );
        assert_eq!(probe_ssn(&s, false).status, Status::No);
        assert_eq!(probe_ssn(&[0x82, 0, 0, 0], false).status, Status::Match);
        assert_eq!(probe_ssn(&[0x85, 0, 0, 0], false).status, Status::No);
    }

    /// RFC 1002 §4.4.1 direct-group datagram carrying a few bytes of user data.
    #[test]
    fn direct_datagram() {
        let names = [encode(b"HOST", 0), encode(b"GROUP", 0x1E)].concat();
        let mut d = vec![0x11, 0x02, 0, 1, 192, 168, 0, 2, 0, 138];
        d.extend(((names.len() + 3) as u16).to_be_bytes());
        d.extend([0, 0]);
        d.extend(&names);
        d.extend(b"abc");
        assert_eq!(datagram_data(&d), Some(("HOST".to_owned(), &b"abc"[..])));
        assert_eq!(probe_dgm(&d, true).meta["netbios_name"], "HOST");
        assert_eq!(probe_dgm(&d[..d.len() - 1], true).status, Status::No);
        assert_eq!(probe_dgm(&[0x13; 11], true).status, Status::Match);
    }
}
