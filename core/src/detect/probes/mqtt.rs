//! MQTT 3.1/3.1.1/5 control packets, for streams seen after their CONNECT (mid-connection).
//!
//! Each control packet has a type 1-15, the fixed flags the type requires (PUBLISH: any but
//! QoS 3; PUBREL, SUBSCRIBE, UNSUBSCRIBE: 0010; others: 0000), a variable-length remaining length
//! of at most 4 bytes, and the body its type has in MQTT 3.1.1 or 5: CONNECT's protocol name;
//! PUBLISH's topic (UTF-8, no wildcard) and, above QoS 0, a non-zero identifier; the acks'
//! identifier, reason code and properties filling the body; SUBSCRIBE's and UNSUBSCRIBE's filters
//! tiling it; SUBACK's codes; nothing after PINGREQ/PINGRESP. At least two whole packets must
//! chain, so one lucky byte pair is not enough, and the bodies keep encrypted bytes from chaining.
//!
//! Meta: `mqtt_first` (name of the first packet type, e.g. "publish", "pingreq").
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[Probe::single("mqtt", probe).answers(answers!["mqtt_first"])];

const NAMES: [&str; 16] = [
    "reserved",
    "connect",
    "connack",
    "publish",
    "puback",
    "pubrec",
    "pubrel",
    "pubcomp",
    "subscribe",
    "suback",
    "unsubscribe",
    "unsuback",
    "pingreq",
    "pingresp",
    "disconnect",
    "auth",
];
const MAX_PACKETS: usize = 16;
const MAX_LENGTH_BYTES: usize = 4;

/// (remaining length, offset of the body); None when cut or longer than 4 bytes.
fn remaining(data: &[u8], off: usize) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for i in 0..MAX_LENGTH_BYTES {
        let byte = *data.get(off + i)?;
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, off + i + 1));
        }
    }
    None
}

/// A UTF-8 string of MQTT (1.5.4 / 3.1.1 1.5.3): a 16-bit length, then valid UTF-8 without
/// U+0000; the offset after it.
fn string(body: &[u8], off: usize) -> Option<usize> {
    let len = usize::from(u16::from_be_bytes([*body.get(off)?, *body.get(off + 1)?]));
    let text = body.get(off + 2..off + 2 + len)?;
    (std::str::from_utf8(text).is_ok() && !text.contains(&0)).then_some(off + 2 + len)
}

/// A non-zero packet identifier (2.2.1) at the start of `body`.
fn packet_id(body: &[u8]) -> bool {
    matches!(body, [hi, lo, ..] if *hi != 0 || *lo != 0)
}

/// MQTT 5 properties at `off` (2.2.2): a variable-length byte count that fits the body; the
/// offset after them.
fn properties(body: &[u8], off: usize) -> Option<usize> {
    let (len, start) = remaining(body, off)?;
    (start + len <= body.len()).then_some(start + len)
}

/// SUBSCRIBE's or UNSUBSCRIBE's topic filters from `off` to the end of the body, at least one,
/// each a non-empty string (SUBSCRIBE's followed by options with a QoS of at most 2 and, in
/// MQTT 5's byte, clear reserved bits).
fn filters(body: &[u8], mut off: usize, options: bool) -> bool {
    let mut count = 0;
    while off < body.len() {
        let Some(end) = string(body, off).filter(|&end| end > off + 2) else {
            return false;
        };
        off = end;
        if options {
            let Some(&o) = body.get(off) else {
                return false;
            };
            if o & 0xc0 != 0 || o & 3 == 3 || (o >> 4) & 3 == 3 {
                return false;
            }
            off += 1;
        }
        count += 1;
    }
    count > 0
}

/// MQTT 5 reason codes a SUBACK or UNSUBACK may carry (3.9.3, 3.11.3).
fn ack_code(code: u8) -> bool {
    matches!(
        code,
        0x00..=0x02 | 0x11 | 0x80 | 0x83 | 0x87 | 0x8f | 0x91 | 0x97 | 0x9e | 0xa1 | 0xa2
    )
}

/// A PUBACK..PUBCOMP, UNSUBACK, DISCONNECT or AUTH after its packet identifier (if any): empty
/// (3.1.1, or MQTT 5's short form), a reason code, or a reason code and properties that fill it.
fn reason_and_properties(body: &[u8], off: usize) -> bool {
    match body.get(off) {
        None => true,
        Some(&code) if code == 0 || code >= 0x80 || matches!(code, 0x04 | 0x10 | 0x18 | 0x19) => {
            off + 1 == body.len() || properties(body, off + 1) == Some(body.len())
        }
        Some(_) => false,
    }
}

/// The body a control packet of this type and flags must have (MQTT 3.1.1 and 5, chapter 3).
/// Random bytes pass a type and a length one time in ten; the bodies' strings, identifiers and
/// codes are what keep an encrypted stream picked up mid-way from chaining two packets.
fn packet_ok(kind: u8, flags: u8, body: &[u8]) -> bool {
    if kind == 3 {
        let qos = (flags >> 1) & 3;
        let Some(end) = string(body, 0) else {
            return false;
        };
        let topic = &body[2..end];
        // A PUBLISH names a topic, never a filter (4.7.1); QoS 1 and 2 add an identifier.
        return qos != 3
            && !topic.contains(&b'+')
            && !topic.contains(&b'#')
            && (qos == 0 || packet_id(&body[end..]));
    }
    if flags != if matches!(kind, 6 | 8 | 10) { 2 } else { 0 } {
        return false;
    }
    match kind {
        1 => body.starts_with(b"\x00\x04MQTT") || body.starts_with(b"\x00\x06MQIsdp"),
        2 => {
            body.len() >= 2
                && body[0] <= 1
                && (body[1] <= 5 || (body[1] >= 0x80 && properties(body, 2) == Some(body.len())))
        }
        4..=7 => packet_id(body) && reason_and_properties(body, 2),
        8 | 10 => {
            let options = kind == 8;
            packet_id(body)
                && (filters(body, 2, options)
                    || properties(body, 2).is_some_and(|off| filters(body, off, options)))
        }
        9 | 11 => {
            let codes_from = |off: usize| {
                let codes = &body[off.min(body.len())..];
                !codes.is_empty() && codes.iter().all(|&c| ack_code(c))
            };
            packet_id(body)
                && ((kind == 11 && body.len() == 2)
                    || codes_from(2)
                    || properties(body, 2).is_some_and(codes_from))
        }
        12 | 13 => body.is_empty(),
        14 | 15 => reason_and_properties(body, 0),
        _ => false,
    }
}

pub fn probe(data: &[u8], _from_client: bool) -> ProbeResult {
    let (mut off, mut whole, mut first) = (0usize, 0usize, None);
    for _ in 0..MAX_PACKETS {
        let Some(&head) = data.get(off) else {
            break;
        };
        let (kind, flags) = (head >> 4, head & 0x0f);
        if kind == 0 {
            return ProbeResult::no();
        }
        let Some((length, body_start)) = remaining(data, off + 1) else {
            break;
        };
        let Some(body) = data.get(body_start..body_start + length) else {
            break;
        };
        if !packet_ok(kind, flags, body) {
            return ProbeResult::no();
        }
        first = first.or(NAMES.get(usize::from(kind)).copied());
        whole += 1;
        off = body_start + length;
    }
    let Some(first) = first.filter(|_| whole >= 2) else {
        return ProbeResult::no();
    };
    let mut meta = Meta::new();
    meta.insert("mqtt_first".into(), json!(first));
    ProbeResult::hit(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    /// PUBLISH QoS 0 (MQTT 3.1.1 section 3.3): topic "a/b", payload "hi".
    const PUBLISH: &[u8] = b"\x30\x07\x00\x03a/bhi";
    const PINGREQ: &[u8] = b"\xc0\x00";
    /// SUBSCRIBE (flags 0010): packet id 1, topic "t" QoS 0.
    const SUBSCRIBE: &[u8] = b"\x82\x06\x00\x01\x00\x01t\x00";

    #[test]
    fn packets_chain() {
        let r = probe(&[PUBLISH, PINGREQ].concat(), true);
        assert_eq!(r.meta["mqtt_first"], "publish");
        assert_eq!(
            probe(&[PINGREQ, SUBSCRIBE].concat(), true).meta["mqtt_first"],
            "pingreq"
        );
        assert_eq!(
            probe(PUBLISH, true).status,
            Status::No,
            "one packet is not enough"
        );
        assert_eq!(
            probe(&[PUBLISH, b"\xc1\x00"].concat(), true).status,
            Status::No
        );
        assert_eq!(
            probe(&[PUBLISH, b"\x00\x00"].concat(), true).status,
            Status::No
        );
        assert_eq!(
            probe(&[PINGREQ, PINGREQ, b"\x30\xff\xff"].concat(), true).meta["mqtt_first"],
            "pingreq"
        );
        assert_eq!(
            probe(b"\x36\x02\x00\x00\xc0\x00", true).status,
            Status::No,
            "QoS 3"
        );
    }

    #[test]
    fn remaining_length() {
        assert_eq!(remaining(&[0x7f], 0), Some((127, 1)));
        assert_eq!(remaining(&[0x80, 0x01], 0), Some((128, 2)));
        assert_eq!(
            remaining(&[0xff, 0xff, 0xff, 0x7f], 0),
            Some((268_435_455, 4))
        );
        assert_eq!(remaining(&[0xff, 0xff, 0xff, 0xff, 0x01], 0), None);
        assert_eq!(remaining(&[0x80], 0), None);
    }

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("mqtt");
    }

    fn named(packets: &[&[u8]]) -> bool {
        probe(&packets.concat(), true).status == Status::Match
    }

    #[test]
    fn bodies_follow_the_specification() {
        // SUBSCRIBE in MQTT 5: an empty property list between identifier and filters.
        assert!(named(&[b"\x82\x07\x00\x01\x00\x00\x01t\x00", PINGREQ]));
        // A filter whose length runs past the body, an options byte asking QoS 3.
        assert!(!named(&[b"\x82\x06\x00\x01\x00\x09t\x00", PINGREQ]));
        assert!(!named(&[b"\x82\x06\x00\x01\x00\x01t\x03", PINGREQ]));
        // A PUBLISH names a topic, not a filter, in UTF-8; QoS 1 carries a non-zero identifier.
        assert!(!named(&[b"\x30\x07\x00\x03a/#hi", PINGREQ]));
        assert!(!named(&[b"\x30\x07\x00\x03a\xffbhi", PINGREQ]));
        assert!(named(&[b"\x32\x07\x00\x03a/b\x00\x07", PINGREQ]));
        assert!(!named(&[b"\x32\x07\x00\x03a/b\x00\x00", PINGREQ]));
        // PUBACK: the identifier, then (MQTT 5) a reason code and properties that fill it.
        assert!(named(&[b"\x40\x02\x00\x07", b"\x40\x04\x00\x08\x10\x00"]));
        assert!(!named(&[b"\x40\x04\x00\x08\x10\x07", PINGREQ]));
        // SUBACK codes: granted QoS 0-2 or a failure code, nothing else.
        assert!(named(&[b"\x90\x04\x00\x01\x00\x80", PINGREQ]));
        assert!(!named(&[b"\x90\x03\x00\x01\x10", PINGREQ]));
        // CONNECT names its protocol.
        assert!(!named(&[b"\x10\x06\x00\x04MQXT", PINGREQ]));
    }

    /// Random bytes stand for an encrypted stream picked up in its middle: before the bodies
    /// were checked, about one such 2 KiB stream in 3,700 chained two packets (27 of 100,000)
    /// and was named MQTT, a cleartext protocol, on 443.
    #[test]
    fn encrypted_streams_do_not_chain() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut stream = vec![0u8; 2048];
        let named = (0..20_000)
            .filter(|_| {
                for b in stream.iter_mut() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *b = (x >> 32) as u8;
                }
                probe(&stream, false).status == Status::Match
            })
            .count();
        assert_eq!(named, 0);
    }
}
