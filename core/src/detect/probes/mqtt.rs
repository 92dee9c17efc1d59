//! MQTT 3.1/3.1.1/5 control packets, for streams seen after their CONNECT (mid-connection).
//!
//! Each control packet has a type 1-15, the fixed flags the type requires (PUBLISH: any but
//! QoS 3; PUBREL, SUBSCRIBE, UNSUBSCRIBE: 0010; others: 0000), a variable-length remaining length
//! of at most 4 bytes, and a body of a size the type allows (PINGREQ/PINGRESP 0; PUBACK..PUBCOMP
//! at least 2; PUBLISH a topic whose length fits). At least two whole packets must chain, so one
//! lucky byte pair is not enough.
//!
//! Meta: `mqtt_first` (name of the first packet type, e.g. "publish", "pingreq").
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[Probe::single("mqtt", probe)];

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

fn packet_ok(kind: u8, flags: u8, body: &[u8]) -> bool {
    if kind == 3 {
        let topic = match *body {
            [hi, lo, ..] => usize::from(u16::from_be_bytes([hi, lo])),
            _ => return false,
        };
        return (flags >> 1) & 3 != 3 && 2 + topic <= body.len();
    }
    if flags != if matches!(kind, 6 | 8 | 10) { 2 } else { 0 } {
        return false;
    }
    match kind {
        12 | 13 => body.is_empty(),
        2 | 4 | 5 | 6 | 7 | 9 | 11 => body.len() >= 2,
        _ => true,
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
}
