//! Diameter (RFC 6733): the first message of a direction, header and AVPs.
//!
//! `diameter`: version 1, a message length that is a multiple of 4 and holds the 20-byte header,
//! the reserved flag bits clear (section 3), and AVPs that tile the message as far as it is
//! there (section 4.1: code, flags with the reserved bits clear, a length of at least the AVP
//! header, the vendor id when the V bit is set, padding to 4 bytes). The first message of a
//! connection is a capabilities exchange (section 5.3), which names each peer.
//!
//! Meta: `diameter_command` ("capabilities-exchange-request", "credit-control-answer", ... or
//! "command-N-request"), `diameter_origin_host`, `diameter_origin_realm`, `diameter_product`
//! (Product-Name), `diameter_result_code` (an answer's Result-Code); the server's command,
//! origin and product as `<name>_server`.
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};
use crate::text::{clean_text, MAX_TEXT};

pub static PROBES: &[Probe] = &[Probe::single("diameter", probe)
    .gated(&[1])
    .answers(answers![
        "diameter_command",
        "diameter_origin_host",
        "diameter_origin_realm",
        "diameter_product",
    ])];

const HEADER: usize = 20;
const REQUEST: u8 = 0x80;
const VENDOR: u8 = 0x80;
/// AVPs read before giving up on the rest of a message (a CER has about a dozen).
const MAX_AVPS: usize = 64;

/// Command codes of the base protocol (RFC 6733 3.1) and of the applications seen most
/// (RFC 4006 credit control, RFC 7155 NASREQ, RFC 4072 EAP, 3GPP TS 29.272 S6a/S6d).
fn command_name(code: u32) -> Option<&'static str> {
    Some(match code {
        257 => "capabilities-exchange",
        258 => "re-auth",
        265 => "aa",
        268 => "diameter-eap",
        271 => "accounting",
        272 => "credit-control",
        274 => "abort-session",
        275 => "session-termination",
        280 => "device-watchdog",
        282 => "disconnect-peer",
        316 => "update-location",
        317 => "cancel-location",
        318 => "authentication-information",
        319 => "insert-subscriber-data",
        320 => "delete-subscriber-data",
        321 => "purge-ue",
        322 => "reset",
        323 => "notify",
        _ => return None,
    })
}

fn be24(b: &[u8]) -> usize {
    (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2])
}

pub fn probe(data: &[u8], _from_client: bool) -> ProbeResult {
    let Some(header) = data.get(..HEADER) else {
        return if data.first().is_none_or(|&v| v == 1) {
            ProbeResult::more()
        } else {
            ProbeResult::no()
        };
    };
    let length = be24(&header[1..4]);
    let flags = header[4];
    if header[0] != 1 || length < HEADER || !length.is_multiple_of(4) || flags & 0x0f != 0 {
        return ProbeResult::no();
    }
    let code = u32::try_from(be24(&header[5..8])).unwrap_or(u32::MAX);
    let kind = if flags & REQUEST != 0 {
        "request"
    } else {
        "answer"
    };
    let command = command_name(code).map_or_else(
        || format!("command-{code}-{kind}"),
        |n| format!("{n}-{kind}"),
    );
    let mut meta = Meta::new();
    meta.insert("diameter_command".into(), json!(command));
    let message = &data[..length.min(data.len())];
    let mut at = HEADER;
    let mut avps = 0;
    for _ in 0..MAX_AVPS {
        let Some(avp) = message.get(at..at + 8) else {
            break;
        };
        let avp_code = u32::from_be_bytes([avp[0], avp[1], avp[2], avp[3]]);
        let avp_flags = avp[4];
        let avp_len = be24(&avp[5..8]);
        let head = if avp_flags & VENDOR != 0 { 12 } else { 8 };
        if avp_flags & 0x1f != 0 || avp_len < head || at + avp_len > length {
            return ProbeResult::no();
        }
        let value = message.get(at + head..at + avp_len);
        if let (Some(value), 0) = (value, avp_flags & VENDOR) {
            let key = match avp_code {
                264 => Some("diameter_origin_host"),
                296 => Some("diameter_origin_realm"),
                269 => Some("diameter_product"),
                _ => None,
            };
            if let Some(key) = key {
                meta.insert(key.into(), json!(clean_text(value, MAX_TEXT)));
            } else if avp_code == 268 {
                if let Ok(rc) = <[u8; 4]>::try_from(value) {
                    meta.insert("diameter_result_code".into(), json!(u32::from_be_bytes(rc)));
                }
            }
        }
        avps += 1;
        at += avp_len.div_ceil(4) * 4;
        if at >= message.len() {
            break;
        }
    }
    // Every message carries AVPs (Origin-Host at least): a header alone is not enough to say.
    let whole = data.len() >= length;
    if avps == 0 {
        return if whole {
            ProbeResult::no()
        } else {
            ProbeResult::more()
        };
    }
    // The first message is all this direction says; one cut short has its facts still to come.
    ProbeResult {
        partial: !whole,
        ..ProbeResult::hit_done(meta, whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::vectors::text;
    use crate::detect::probes::Status;

    fn avp(code: u32, value: &[u8]) -> Vec<u8> {
        let mut a = code.to_be_bytes().to_vec();
        a.push(0x40);
        a.extend_from_slice(&((8 + value.len()) as u32).to_be_bytes()[1..]);
        a.extend_from_slice(value);
        a.resize(a.len().div_ceil(4) * 4, 0);
        a
    }

    fn message(flags: u8, code: u32, avps: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = avps.concat();
        let mut m = vec![1];
        m.extend_from_slice(&((HEADER + body.len()) as u32).to_be_bytes()[1..]);
        m.push(flags);
        m.extend_from_slice(&code.to_be_bytes()[1..]);
        m.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2]);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn a_capabilities_exchange_names_the_peer() {
        let cer = message(
            0x80,
            257,
            &[
                avp(264, b"cli.example.test"),
                avp(296, b"example.test"),
                avp(266, &[0, 0, 0, 0]),
                avp(269, b"freeDiameter"),
            ],
        );
        let r = probe(&cer, true);
        assert_eq!(r.status, Status::Match);
        assert!(r.done);
        for (key, want) in [
            ("diameter_command", "capabilities-exchange-request"),
            ("diameter_origin_host", "cli.example.test"),
            ("diameter_origin_realm", "example.test"),
            ("diameter_product", "freeDiameter"),
        ] {
            assert_eq!(text(&r, key).as_deref(), Some(want), "{key}");
        }
        let cea = message(0, 257, &[avp(268, &2001u32.to_be_bytes())]);
        let r = probe(&cea, false);
        assert_eq!(
            text(&r, "diameter_command").as_deref(),
            Some("capabilities-exchange-answer")
        );
        assert_eq!(r.meta["diameter_result_code"], 2001);
        assert_eq!(
            text(
                &probe(&message(0x80, 999, &[avp(264, b"a")]), true),
                "diameter_command"
            )
            .as_deref(),
            Some("command-999-request")
        );
        // A header with no AVP says too little.
        assert_eq!(probe(&message(0x80, 280, &[]), true).status, Status::No);
    }

    #[test]
    fn headers_and_avps_that_do_not_add_up() {
        let ok = message(0x80, 280, &[avp(264, b"a.example")]);
        assert_eq!(probe(&ok[..10], true).status, Status::More);
        assert_eq!(probe(&[2, 0], true).status, Status::No);
        for (at, value) in [(0, 2), (3, 21), (4, 0x81)] {
            let mut bad = ok.clone();
            bad[at] = value;
            assert_eq!(probe(&bad, true).status, Status::No, "byte {at}");
        }
        // An AVP longer than its message, and one with reserved flag bits.
        let mut long = ok.clone();
        long[HEADER + 7] = 200;
        assert_eq!(probe(&long, true).status, Status::No);
        let mut reserved = ok.clone();
        reserved[HEADER + 4] = 0x41;
        assert_eq!(probe(&reserved, true).status, Status::No);
        // A message cut short: what is there counts, and the side stays open.
        assert_eq!(probe(&ok[..HEADER + 4], true).status, Status::More);
        let cut = probe(&ok[..HEADER + 8], true);
        assert!(cut.is_match() && !cut.done && cut.partial);
        assert_eq!(cut.meta.get("diameter_origin_host"), None);
    }
}
