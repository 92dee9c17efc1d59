//! AMQP 0-9-1: the protocol header, or frames that chain (type, channel, size, payload, 0xCE).
//!
//! A client opens with "AMQP" 0 0 9 1 (or the 1.0 header "AMQP" id 1 0 0). Mid-connection,
//! frames of type 1 (method), 2 (header), 3 (body) or 8 (heartbeat) each end with the frame-end
//! octet 0xCE exactly where their size says; every whole frame in the prefix must check, and at
//! least one must be whole.
//!
//! Meta: `amqp_version` ("0-9-1", "1.0") for a protocol header, `amqp_method` ("class.method")
//! for a first method frame ("10.10" is connection.start).
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[Probe::single("amqp", probe).answers(answers!["amqp_method"])];

const FRAME_END: u8 = 0xce;
const MAX_FRAMES: usize = 16;
const MAX_FRAME: usize = 1 << 20;
const FRAME_METHOD: u8 = 1;
const FRAME_HEARTBEAT: u8 = 8;

fn version(name: &str) -> ProbeResult {
    let mut meta = Meta::new();
    meta.insert("amqp_version".into(), json!(name));
    ProbeResult::hit(meta)
}

pub fn probe(data: &[u8], _from_client: bool) -> ProbeResult {
    if let [b'A', b'M', b'Q', b'P', id, major, minor, revision, ..] = *data {
        return match (id, major, minor, revision) {
            (0, 0, 9, 1) => version("0-9-1"),
            (0..=3, 1, 0, 0) => version("1.0"),
            _ => ProbeResult::no(),
        };
    }
    let (mut off, mut whole, mut meta) = (0usize, 0usize, Meta::new());
    for _ in 0..MAX_FRAMES {
        let Some(&[kind, c0, c1, s0, s1, s2, s3]) = data.get(off..off + 7) else {
            break;
        };
        let channel = u16::from_be_bytes([c0, c1]);
        let size = u32::from_be_bytes([s0, s1, s2, s3]) as usize;
        if !matches!(kind, 1 | 2 | 3 | 8)
            || size > MAX_FRAME
            || (kind == FRAME_HEARTBEAT && (size != 0 || channel != 0))
        {
            return ProbeResult::no();
        }
        let end = off + 7 + size;
        let Some(&last) = data.get(end) else {
            break;
        };
        if last != FRAME_END {
            return ProbeResult::no();
        }
        if whole == 0 && kind == FRAME_METHOD && size >= 4 {
            if let Some(&[a, b, c, d]) = data.get(off + 7..off + 11) {
                let (class, method) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
                meta.insert("amqp_method".into(), json!(format!("{class}.{method}")));
            }
        }
        whole += 1;
        off = end + 1;
    }
    if whole == 0 {
        return ProbeResult::no();
    }
    ProbeResult::hit(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend_from_slice(&channel.to_be_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out.push(FRAME_END);
        out
    }

    #[test]
    fn protocol_headers() {
        assert_eq!(
            probe(b"AMQP\x00\x00\x09\x01", true).meta["amqp_version"],
            "0-9-1"
        );
        assert_eq!(
            probe(b"AMQP\x03\x01\x00\x00", true).meta["amqp_version"],
            "1.0"
        );
        assert_eq!(probe(b"AMQP\x01\x01\x00\x0a", true).status, Status::No);
        assert_eq!(probe(b"AMQP\x00\x00", true).status, Status::No);
    }

    #[test]
    fn connection_start_frame() {
        // connection.start (class 10, method 10): version 0-9, empty properties, mechanisms, locales.
        let mut args = vec![0, 10, 0, 10, 0, 9, 0, 0, 0, 0];
        args.extend_from_slice(&5u32.to_be_bytes());
        args.extend_from_slice(b"PLAIN");
        args.extend_from_slice(&5u32.to_be_bytes());
        args.extend_from_slice(b"en_US");
        let start = frame(1, 0, &args);
        let r = probe(&start, false);
        assert_eq!(r.meta["amqp_method"], "10.10");
        let mut two = frame(8, 0, &[]);
        two.extend(start.clone());
        let r = probe(&two, false);
        assert!(
            r.is_match() && r.meta.is_empty(),
            "a method frame after the first adds nothing"
        );
        assert_eq!(probe(&start[..start.len() - 1], false).status, Status::No);
        let mut bad = start.clone();
        *bad.last_mut().unwrap() = 0;
        assert_eq!(probe(&bad, false).status, Status::No);
        assert_eq!(probe(&frame(8, 1, &[]), false).status, Status::No);
    }

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("amqp");
    }
}
