//! Microsoft SQL Server TDS (MS-TDS 2.2.3): 8-byte packet headers chained through the stream.
//!
//! Each packet header holds a type the direction may send (client: SQL batch, pre-TDS7 login,
//! RPC, attention, bulk load, transaction manager, TDS7 login, SSPI, pre-login; server: tabular
//! result, and pre-login answers carried as type 4), a status of known bits, a length of at least
//! 8, and a zero window byte. A packet without the end-of-message bit must have at least the
//! smallest negotiable packet size (512), since only the last packet of a message may be short.
//! When the stream holds more than the first packet, the next headers must check too.
//!
//! Meta: `tds_type` ("prelogin", "login7", "sql-batch", "rpc", "result"...).
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[Probe::single("tds", probe).answers(answers!["tds_type"])];

const MAX_PACKET: usize = 32768;
/// The smallest packet size a client may negotiate.
const MIN_PACKET_SIZE: usize = 512;
/// Headers after the first that are checked.
const MAX_CHAIN: usize = 4;

const STATUS_EOM: u8 = 0x01;
const STATUS_IGNORE: u8 = 0x02;

fn type_name(kind: u8, from_client: bool) -> Option<&'static str> {
    Some(match (kind, from_client) {
        (0x01, true) => "sql-batch",
        (0x02, true) => "login",
        (0x03, true) => "rpc",
        (0x06, true) => "attention",
        (0x07, true) => "bulk-load",
        (0x0e, true) => "transaction-manager",
        (0x10, true) => "login7",
        (0x11, true) => "sspi",
        (0x12, _) => "prelogin",
        (0x04, false) => "result",
        _ => return None,
    })
}

/// The length of a valid packet header at `off`.
fn header_ok(data: &[u8], off: usize, from_client: bool) -> Option<usize> {
    let [kind, status, hi, lo, _, _, _, window] = *data.get(off..off.checked_add(8)?)? else {
        return None;
    };
    let length = usize::from(u16::from_be_bytes([hi, lo]));
    type_name(kind, from_client)?;
    if status & 0xe0 != 0 || !(8..=MAX_PACKET).contains(&length) || window != 0 {
        return None;
    }
    let eom = status & STATUS_EOM != 0;
    // "Ignore this event" is only valid together with end-of-message, and only the last packet
    // of a message (EOM) may be shorter than the packet size.
    if !eom && (status & STATUS_IGNORE != 0 || length < MIN_PACKET_SIZE) {
        return None;
    }
    Some(length)
}

pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    let Some(mut off) = header_ok(data, 0, from_client) else {
        return ProbeResult::no();
    };
    for _ in 0..MAX_CHAIN {
        if off + 8 > data.len() {
            break;
        }
        match header_ok(data, off, from_client) {
            Some(length) => off += length,
            None => return ProbeResult::no(),
        }
    }
    let Some(name) = data.first().and_then(|&k| type_name(k, from_client)) else {
        return ProbeResult::no();
    };
    let mut meta = Meta::new();
    meta.insert("tds_type".into(), json!(name));
    ProbeResult::hit(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    fn packet(kind: u8, status: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![kind, status];
        out.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0, 1, 0]); // SPID 0, PacketID 1, Window 0
        out.extend_from_slice(body);
        out
    }

    /// PRELOGIN (MS-TDS 2.2.6.5): VERSION and ENCRYPTION options, then the terminator.
    fn prelogin() -> Vec<u8> {
        let mut body = vec![
            0x00, 0x00, 0x0b, 0x00, 0x06, 0x01, 0x00, 0x11, 0x00, 0x01, 0xff,
        ];
        body.extend_from_slice(&[0x0f, 0x00, 0x07, 0xd0, 0x00, 0x00, 0x00]);
        packet(0x12, STATUS_EOM, &body)
    }

    #[test]
    fn prelogin_both_ways() {
        assert_eq!(probe(&prelogin(), true).meta["tds_type"], "prelogin");
        assert_eq!(probe(&prelogin(), false).meta["tds_type"], "prelogin");
        let batch = packet(
            0x01,
            STATUS_EOM,
            "select 1"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<_>>()
                .as_slice(),
        );
        assert_eq!(probe(&batch, true).meta["tds_type"], "sql-batch");
        assert_eq!(probe(&batch, false).status, Status::No);
        assert_eq!(
            probe(&packet(0x04, STATUS_EOM, &[0xfd; 9]), false).meta["tds_type"],
            "result"
        );
    }

    #[test]
    fn chained_headers_must_check() {
        let mut two = prelogin();
        two.extend(packet(0x01, STATUS_EOM, b"xx"));
        assert!(probe(&two, true).is_match());
        let mut broken = prelogin();
        broken.extend(packet(0x05, STATUS_EOM, b"xx"));
        assert_eq!(probe(&broken, true).status, Status::No);
        // A short packet without end-of-message cannot be.
        assert_eq!(probe(&packet(0x12, 0, b"abc"), true).status, Status::No);
        assert_eq!(
            probe(&packet(0x12, STATUS_IGNORE, b"abc"), true).status,
            Status::No
        );
    }

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("tds");
    }
}
