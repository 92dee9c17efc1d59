//! CoAP (RFC 7252): the 4-byte header, token, and an option list that must decode to the end.
//!
//! `coap`: one UDP datagram. Version 1, token length 0-8, a code of a known class (0.xx requests
//! and empty, 2.xx, 4.xx, 5.xx responses, 7.xx signalling); an empty message (0.00) is exactly 4
//! bytes. Options use the delta/length nibbles (13 and 14 extend, 15 is reserved except as the
//! 0xFF payload marker), and a payload marker must be followed by a payload.
//!
//! Meta: `coap_code` ("GET", "2.05"...), `coap_type` ("CON", "NON", "ACK", "RST").
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] =
    &[Probe::single("coap", probe).answers(answers!["coap_type", "coap_code"])];

const TYPES: [&str; 4] = ["CON", "NON", "ACK", "RST"];
/// Options decoded before giving up (the loop must see the end within this many steps).
const MAX_OPTIONS: usize = 64;
const PAYLOAD_MARKER: u8 = 0xFF;

fn method(detail: u8) -> &'static str {
    match detail {
        1 => "GET",
        2 => "POST",
        3 => "PUT",
        4 => "DELETE",
        5 => "FETCH",
        6 => "PATCH",
        7 => "iPATCH",
        _ => "?",
    }
}

/// An option delta or length nibble and its extension bytes at `off`: (value, offset after).
fn extended(nibble: u8, data: &[u8], off: usize) -> Option<(usize, usize)> {
    match nibble {
        0..=12 => Some((usize::from(nibble), off)),
        13 => data.get(off).map(|&b| (usize::from(b) + 13, off + 1)),
        14 => data
            .get(off..off + 2)
            .map(|b| ((usize::from(b[0]) << 8 | usize::from(b[1])) + 269, off + 2)),
        _ => None,
    }
}

/// Whether the options after the token decode to the end or to a non-empty payload.
fn options_ok(data: &[u8], mut off: usize) -> bool {
    for _ in 0..MAX_OPTIONS {
        let Some(&byte) = data.get(off) else {
            return true;
        };
        if byte == PAYLOAD_MARKER {
            return off + 1 < data.len();
        }
        let Some((_, after_delta)) = extended(byte >> 4, data, off + 1) else {
            return false;
        };
        let Some((len, after_len)) = extended(byte & 0x0F, data, after_delta) else {
            return false;
        };
        if after_len + len > data.len() {
            return false;
        }
        off = after_len + len;
    }
    false
}

fn hit(code: String, kind: u8) -> ProbeResult {
    let mut meta = Meta::new();
    meta.insert("coap_code".into(), json!(code));
    meta.insert("coap_type".into(), json!(TYPES[usize::from(kind & 3)]));
    ProbeResult::hit(meta)
}

pub fn probe(data: &[u8], _from_client: bool) -> ProbeResult {
    if data.len() < 4 || data[0] >> 6 != 1 {
        return ProbeResult::no();
    }
    let (tkl, code, kind) = (usize::from(data[0] & 0x0F), data[1], data[0] >> 4);
    let (cls, detail) = (code >> 5, code & 0x1F);
    if tkl > 8 || !matches!(cls, 0 | 2 | 4 | 5 | 7) || (cls == 0 && detail > 7) {
        return ProbeResult::no();
    }
    if code == 0 {
        return if data.len() == 4 && tkl == 0 {
            hit("empty".into(), kind)
        } else {
            ProbeResult::no()
        };
    }
    let off = 4 + tkl;
    if off > data.len() || !options_ok(data, off) {
        return ProbeResult::no();
    }
    let name = if cls == 0 {
        method(detail).to_string()
    } else {
        format!("{cls}.{detail:02}")
    };
    hit(name, kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("coap");
    }

    #[test]
    fn no_panic_on_hostile_shapes() {
        crate::detect::probes::vectors::never_panics("coap");
    }

    #[test]
    fn get_and_content_response() {
        // RFC 7252 appendix A style: CON GET, message id 0x7d34, token 0x20, Uri-Path "temperature".
        let mut get = vec![0x41, 0x01, 0x7d, 0x34, 0x20, 0xbb];
        get.extend_from_slice(b"temperature");
        assert_eq!(
            probe(&get, true).meta,
            json!({"coap_code": "GET", "coap_type": "CON"})
                .as_object()
                .cloned()
                .unwrap()
        );
        // Piggybacked ACK 2.05 Content with the same token, Content-Format 0, payload "22.3 C".
        let mut ack = vec![0x61, 0x45, 0x7d, 0x34, 0x20, 0xc0, 0xff];
        ack.extend_from_slice(b"22.3 C");
        assert_eq!(
            probe(&ack, false).meta,
            json!({"coap_code": "2.05", "coap_type": "ACK"})
                .as_object()
                .cloned()
                .unwrap()
        );
        // A payload marker with no payload, and an option running past the end, are refused.
        assert_eq!(probe(&ack[..7], false).status, Status::No);
        assert_eq!(probe(&get[..10], true).status, Status::No);
        // An empty RST is exactly 4 bytes.
        assert_eq!(
            probe(&[0x70, 0x00, 0x12, 0x34], false).meta["coap_code"],
            "empty"
        );
    }

    #[test]
    fn extended_option_lengths() {
        // Uri-Path with a 13-extended length of 20 (nibble 13, extension 7).
        let mut p = vec![0x50, 0x02, 0, 1, 0xbd, 7];
        p.extend_from_slice(&[b'x'; 20]);
        assert_eq!(probe(&p, true).meta["coap_code"], "POST");
        // 63 one-byte options decode; the 64th step must already see the end.
        let mut many = vec![0x40, 0x01, 0, 1];
        many.extend_from_slice(&[0x00; 63]);
        assert_eq!(probe(&many, true).status, Status::Match);
        many.push(0x00);
        assert_eq!(probe(&many, true).status, Status::No);
    }
}
