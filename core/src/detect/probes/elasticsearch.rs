//! Elasticsearch transport protocol (node-to-node and transport clients, TCP 9300).
//!
//! Messages start with "ES", a 4-byte big-endian length of the rest, then a request id and a
//! status byte. The length must be at least 13 and fit the stream (or be cut by the detection
//! depth); when a second message begins inside what was seen, its "ES" marker must be where the
//! first length says. A ping is "ES" and length -1 (0xFFFFFFFF).
//!
//! Meta: `es_ping: true` for a keepalive ping.
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[Probe::single("elasticsearch", probe)];

const MAX_MESSAGE: i32 = 512 * 1024 * 1024;
/// Request id (8) and status (1) and version (4): the least a message body holds.
const MIN_MESSAGE: i32 = 13;

pub fn probe(data: &[u8], _from_client: bool) -> ProbeResult {
    let [b'E', b'S', a, b, c, d, ..] = *data else {
        return ProbeResult::no();
    };
    let length = i32::from_be_bytes([a, b, c, d]);
    if length == -1 {
        let mut meta = Meta::new();
        meta.insert("es_ping".into(), json!(true));
        return ProbeResult::hit(meta);
    }
    if !(MIN_MESSAGE..=MAX_MESSAGE).contains(&length) || data.len() < 15 {
        return ProbeResult::no();
    }
    // In range, so positive and far below usize::MAX.
    let next = 6 + length as usize;
    match data.get(next..next + 2) {
        Some(marker) if marker != b"ES" => ProbeResult::no(),
        _ => ProbeResult::hit(Meta::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    /// A transport request header: request id, status (request), version, then a body.
    fn message(body: &[u8]) -> Vec<u8> {
        let mut rest = 1u64.to_be_bytes().to_vec();
        rest.push(0);
        rest.extend_from_slice(&7_170_099u32.to_be_bytes()); // version id
        rest.extend_from_slice(body);
        let mut out = b"ES".to_vec();
        out.extend_from_slice(&(rest.len() as i32).to_be_bytes());
        out.extend(rest);
        out
    }

    #[test]
    fn messages_and_ping() {
        let one = message(b"\x00\x00internal:tcp/handshake\x00");
        let r = probe(&one, true);
        assert!(r.is_match() && r.meta.is_empty());
        let mut two = one.clone();
        two.extend(message(b""));
        assert!(probe(&two, true).is_match());
        let mut bad = one.clone();
        bad.extend_from_slice(b"XS\x00");
        assert_eq!(probe(&bad, true).status, Status::No);
        assert_eq!(probe(b"ES\xff\xff\xff\xff", false).meta["es_ping"], true);
        assert_eq!(probe(&one[..14], true).status, Status::No);
        assert_eq!(
            probe(
                b"ES\x00\x00\x00\x0c\x00\x00\x00\x00\x00\x00\x00\x00\x00",
                true
            )
            .status,
            Status::No
        );
    }

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("elasticsearch");
    }
}
