//! QUIC 1-RTT packets (RFC 9000 §17.3.1) of a connection seen after its handshake.
//!
//! A short header is one byte (header form 0, fixed bit 1; the rest protected), the Destination
//! Connection ID in clear, then the protected packet number and payload. The ID's length is the
//! receiver's choice and not on the wire, so one packet says nothing; but every packet towards
//! the same endpoint repeats it. `quic_short`: at least two datagrams of a direction open with
//! the short header's two bits, then the same `CID_PREFIX` bytes, then differ within the first
//! bytes past the longest ID (the protected packet number). Random datagrams agree so once in
//! 2^64; an ESP packet (SPI, then a counting sequence number) or an OpenVPN data packet (peer
//! ID, then a counting packet ID) repeats 7 bytes at most. Every printable ASCII byte has the
//! short header's two bits, so a text announcement repeated by broadcast (Dropbox's and
//! Spotify's LAN discovery) would pass as well: an ID looks random, not printable nor in runs
//! (RakNet's `fe fe fe fe`). A direction whose endpoint chose a zero-length ID (many clients do)
//! shows nothing: the other direction must.
//!
//! Meta: `quic_packet` ("1-rtt").
#![forbid(unsafe_code)]

use super::{byte_range, Probe, ProbeResult};
use crate::meta::{Meta, Value};

/// Bytes of the Destination Connection ID compared: servers choose 8 to 20.
const CID_PREFIX: usize = 8;
/// The longest Destination Connection ID (RFC 9000 §17.2).
const MAX_CID: usize = 20;
/// Bytes past the longest ID that two packets must not share: the protected packet number.
const PROTECTED: std::ops::Range<usize> = 1 + MAX_CID..1 + MAX_CID + 4;
/// A 1-RTT packet holds at least a packet number byte and the AEAD tag after the ID.
const MIN_PACKET: usize = PROTECTED.end;
/// Datagrams of a direction read.
const MAX_DATAGRAMS: usize = 8;

/// Header form 0, fixed bit 1 (RFC 9000 §17.3.1).
const SHORT_HEADER: &[u8] = &byte_range::<64>(0x40);

pub static PROBES: &[Probe] = &[Probe::units("quic_short", probe_units).gated(SHORT_HEADER)];

fn short_header(datagram: &[u8]) -> Option<&[u8]> {
    let first = *datagram.first()?;
    (first & 0xc0 == 0x40 && datagram.len() >= MIN_PACKET).then(|| &datagram[1..=CID_PREFIX])
}

/// Printable throughout, or three equal bytes in a row: a text or a magic, not a chosen ID.
fn looks_made(id: &[u8]) -> bool {
    id.iter().all(|b| (0x20..0x7f).contains(b))
        || id.windows(3).any(|w| w[0] == w[1] && w[1] == w[2])
}

pub fn probe_units(units: &[&[u8]], _from_client: bool) -> ProbeResult {
    let datagrams = &units[..units.len().min(MAX_DATAGRAMS)];
    let Some(first) = datagrams.first().and_then(|d| short_header(d)) else {
        return ProbeResult::no();
    };
    if datagrams.len() < 2 || looks_made(first) {
        return ProbeResult::no();
    }
    for (i, d) in datagrams.iter().enumerate() {
        if short_header(d) != Some(first) {
            return ProbeResult::no();
        }
        if datagrams[..i].iter().any(|e| e[PROTECTED] == d[PROTECTED]) {
            return ProbeResult::no();
        }
    }
    let mut meta = Meta::new();
    meta.insert("quic_packet".into(), Value::from("1-rtt"));
    ProbeResult::hit(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    const CID: [u8; 8] = [0x01, 0xdf, 0xc0, 0xfe, 0x62, 0xc6, 0x40, 0x77];

    fn packet(first: u8, cid: &[u8], rest: usize) -> Vec<u8> {
        let mut p = vec![first];
        p.extend_from_slice(cid);
        // What follows the ID is protected: it differs from packet to packet.
        p.extend((0..rest).map(|i| ((i * 37 + usize::from(first)) % 251) as u8));
        p
    }

    fn named(units: &[Vec<u8>]) -> Status {
        let refs: Vec<&[u8]> = units.iter().map(Vec::as_slice).collect();
        probe_units(&refs, true).status
    }

    #[test]
    fn packets_to_one_connection_id() {
        // The first bytes of a real 1-RTT flow (protected bits vary, the ID does not).
        let units = [
            packet(0x53, &CID, 40),
            packet(0x4f, &CID, 44),
            packet(0x45, &CID, 40),
        ];
        assert_eq!(named(&units), Status::Match);
        assert_eq!(named(&units[..1]), Status::No, "one packet says nothing");
    }

    #[test]
    fn what_is_not_a_short_header_flow() {
        let mut other = CID;
        other[7] ^= 1;
        // Another ID, a long header, a cleared fixed bit, a packet too short for its tag.
        assert_eq!(
            named(&[packet(0x53, &CID, 40), packet(0x4f, &other, 40)]),
            Status::No
        );
        assert_eq!(
            named(&[packet(0xc3, &CID, 40), packet(0xc3, &CID, 40)]),
            Status::No
        );
        assert_eq!(
            named(&[packet(0x13, &CID, 40), packet(0x13, &CID, 40)]),
            Status::No
        );
        assert_eq!(
            named(&[packet(0x53, &CID, 4), packet(0x53, &CID, 4)]),
            Status::No
        );
        // ESP in UDP (RFC 3948): an SPI, then a sequence number that counts.
        let esp = |seq: u32| {
            let mut p = vec![0x4a, 0x11, 0x22, 0x33];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend((0..40).map(|i| i ^ seq as u8));
            p
        };
        assert_eq!(named(&[esp(1), esp(2), esp(3)]), Status::No);
    }

    #[test]
    fn announcements_repeated_by_broadcast_are_not_quic() {
        // Dropbox LAN sync on 17500/udp: JSON ('{' has the short header's two bits), one
        // announcement after another with other values.
        let dropbox =
            |n: u32| format!("{{\"version\": [2, 0], \"{n:04}\": 17500, \"port\": 17500}}");
        assert_eq!(
            named(&[dropbox(1111).into(), dropbox(2222).into()]),
            Status::No
        );
        // The same packet twice (a retransmission, a repeated beacon) differs nowhere.
        let same = packet(0x53, &CID, 40);
        assert_eq!(named(&[same.clone(), same]), Status::No);
        // RakNet's offline magic after its message id, then a time that moves.
        let raknet = |t: u8| {
            let mut p = vec![
                0x7b, 0x00, 0xff, 0xff, 0x00, 0xfe, 0xfe, 0xfe, 0xfe, 0xfd, 0xfd,
            ];
            p.extend([
                0xfd, 0xfd, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0, 0, 0, t, t, t, t,
            ]);
            p
        };
        assert_eq!(named(&[raknet(1), raknet(2)]), Status::No);
    }
}
