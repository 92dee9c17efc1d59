//! TFTP (RFC 1350, 2347 options): requests, data, acknowledgements, errors and option acks.
//!
//! One datagram. RRQ/WRQ: opcode 1/2, a printable file name, a known transfer mode (netascii,
//! octet, mail) and NUL-terminated option pairs filling the datagram. DATA (3): block number and
//! at most 65464 bytes (the largest blksize option); ACK (4): exactly 4 bytes; ERROR (5): code
//! 0-8 and a NUL-terminated message; OACK (6): option pairs.
//!
//! `tftp` answers only the self-describing messages (requests, errors, option acks);
//! `tftp_transfer` only DATA and ACK of a non-zero block, weak alone, telling with the other
//! direction. Meta: `tftp_op` ("read", "write", "data", "ack", "error", "oack"), `tftp_file`
//! (sanitised).
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};
use crate::text::clean_text;

pub static PROBES: &[Probe] = &[
    Probe::single("tftp", probe_request),
    Probe::single("tftp_transfer", probe_transfer).answers(answers!["tftp_op"]),
];

const MODES: [&[u8]; 3] = [b"netascii", b"octet", b"mail"];
/// Strings a request or option ack may hold (file name, mode, option pairs).
const MAX_STRINGS: usize = 32;
/// The largest DATA payload (RFC 2348 blksize maximum).
const MAX_BLOCK: usize = 65464;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Read,
    Write,
    Data,
    Ack,
    Error,
    Oack,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Write => "write",
            Op::Data => "data",
            Op::Ack => "ack",
            Op::Error => "error",
            Op::Oack => "oack",
        }
    }
}

fn printable(s: &[u8]) -> bool {
    s.iter().all(|b| (0x20..=0x7E).contains(b))
}

/// The NUL-terminated printable strings that fill `body` exactly, or None.
fn strings(body: &[u8]) -> Option<Vec<&[u8]>> {
    let (&last, inner) = body.split_last()?;
    if last != 0 {
        return None;
    }
    let mut parts = Vec::new();
    for part in inner.split(|&b| b == 0) {
        if parts.len() == MAX_STRINGS || part.is_empty() || !printable(part) {
            return None;
        }
        parts.push(part);
    }
    Some(parts)
}

/// The message's operation and, for requests, its file name.
fn parse(data: &[u8]) -> Option<(Op, Option<&[u8]>)> {
    if data.len() < 4 || data[0] != 0 {
        return None;
    }
    let body = &data[2..];
    match data[1] {
        op @ (1 | 2) => {
            let parts = strings(body)?;
            let mode = parts.get(1)?.to_ascii_lowercase();
            if !parts.len().is_multiple_of(2) || !MODES.contains(&mode.as_slice()) {
                return None;
            }
            Some((if op == 1 { Op::Read } else { Op::Write }, Some(parts[0])))
        }
        3 => (data.len() <= 4 + MAX_BLOCK).then_some((Op::Data, None)),
        4 => (data.len() == 4).then_some((Op::Ack, None)),
        5 => {
            let code = u16::from_be_bytes([data[2], data[3]]);
            let message = data.get(4..data.len() - 1).unwrap_or_default();
            (code <= 8 && data[data.len() - 1] == 0 && printable(message))
                .then_some((Op::Error, None))
        }
        6 => strings(body)
            .filter(|p| p.len().is_multiple_of(2))
            .map(|_| (Op::Oack, None)),
        _ => None,
    }
}

fn result(op: Op, file: Option<&[u8]>) -> ProbeResult {
    let mut meta = Meta::new();
    meta.insert("tftp_op".into(), json!(op.name()));
    if let Some(file) = file {
        meta.insert("tftp_file".into(), json!(clean_text(file, 128)));
    }
    ProbeResult::hit(meta)
}

/// Only the self-describing messages: requests, errors and option acks.
pub fn probe_request(data: &[u8], _from_client: bool) -> ProbeResult {
    match parse(data) {
        Some((op, file)) if !matches!(op, Op::Data | Op::Ack) => result(op, file),
        _ => ProbeResult::no(),
    }
}

/// DATA and ACK: four bytes of structure, weak alone, telling with the other direction.
pub fn probe_transfer(data: &[u8], _from_client: bool) -> ProbeResult {
    match parse(data) {
        Some((op @ (Op::Data | Op::Ack), _)) if data[2..4] != [0, 0] => result(op, None),
        _ => ProbeResult::no(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    #[test]
    fn python_vectors() {
        for name in ["tftp", "tftp_transfer"] {
            crate::detect::probes::vectors::replay(name);
        }
    }

    #[test]
    fn no_panic_on_hostile_shapes() {
        for name in ["tftp", "tftp_transfer"] {
            crate::detect::probes::vectors::never_panics(name);
        }
    }

    #[test]
    fn read_request_with_options() {
        // RRQ (RFC 1350 5) "pxelinux.0" octet, with blksize 1468 and tsize 0 (RFC 2348, 2349).
        let rrq = b"\x00\x01pxelinux.0\x00octet\x00blksize\x001468\x00tsize\x000\x00";
        let r = probe_request(rrq, true);
        assert_eq!(
            r.meta,
            json!({"tftp_op": "read", "tftp_file": "pxelinux.0"})
                .as_object()
                .cloned()
                .unwrap()
        );
        assert_eq!(probe_transfer(rrq, true).status, Status::No);
        // Mode is case-insensitive; an unknown mode or a dangling option name is refused.
        assert_eq!(
            probe_request(b"\x00\x02a.cfg\x00NETASCII\x00", true).meta["tftp_op"],
            "write"
        );
        assert_eq!(
            probe_request(b"\x00\x01a\x00binary\x00", true).status,
            Status::No
        );
        assert_eq!(
            probe_request(b"\x00\x01a\x00octet\x00blksize\x00", true).status,
            Status::No
        );
    }

    #[test]
    fn transfer_messages() {
        let mut data = vec![0, 3, 0, 1];
        data.extend_from_slice(&[0x41; 512]);
        assert_eq!(
            probe_transfer(&data, false).meta,
            json!({"tftp_op": "data"}).as_object().cloned().unwrap()
        );
        assert_eq!(probe_request(&data, false).status, Status::No);
        assert_eq!(probe_transfer(&[0, 4, 0, 1], true).meta["tftp_op"], "ack");
        // Block 0 is the ack of a WRQ: too weak for the transfer probe.
        assert_eq!(probe_transfer(&[0, 4, 0, 0], true).status, Status::No);
        assert_eq!(probe_transfer(&[0, 4, 0, 1, 0], true).status, Status::No);
    }

    #[test]
    fn error_and_oack() {
        assert_eq!(
            probe_request(b"\x00\x05\x00\x01File not found\x00", false).meta["tftp_op"],
            "error"
        );
        assert_eq!(
            probe_request(b"\x00\x05\x00\x09x\x00", false).status,
            Status::No
        );
        assert_eq!(
            probe_request(b"\x00\x06blksize\x001468\x00", false).meta["tftp_op"],
            "oack"
        );
    }
}
