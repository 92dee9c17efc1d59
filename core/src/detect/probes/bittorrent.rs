//! BitTorrent: the peer wire handshake (BEP 3) and, over UDP, the uTP transport header (BEP 29).
//!
//! `bt_handshake`: the 68-byte handshake both peers send first: the 19-byte protocol name, 8
//! reserved bytes whose bits announce extensions, the torrent's info hash and the peer id.
//! Meta: `bt_info_hash` (hex: what is shared, the same on both sides), `bt_client` (an
//! Azureus-style peer id's client and version, "-LT2080-"), `bt_extensions` (the reserved bits
//! set: "extension_protocol" BEP 10, "dht" BEP 5, "fast" BEP 6, "v2" BEP 52); the server's
//! `bt_client_server` and `bt_extensions_server`.
//!
//! `utp`: one datagram. Version 1, type ST_DATA..ST_SYN, a well-formed extension chain (selective
//! ACK lengths a multiple of 4, extension bits of 8 bytes), and a payload exactly where the type
//! allows one (ST_DATA only). `utp_units` (units) demands more than one header: an ST_SYN, or two
//! datagrams of one connection id whose sequence numbers move forward by a little, since a lone
//! data header is only two bytes of evidence. The TCP handshake and the DHT's bencoded KRPC
//! messages are plain patterns in signatures/bittorrent.toml.
//!
//! Meta: `utp_type` ("data", "fin", "state", "reset", "syn").
//!
//! Besides BEP 29's selective ACK (1) and extension bits (2), libtorrent sends its close reason
//! (3, four bytes: a reserved u16 and the reason) on ST_FIN and ST_STATE.
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};
use crate::text::{clean_text, hex};

/// Every datagram must be uTP (BEP 29): type 0-4 in the high nibble, version 1 in the low one.
const FIRST: &[u8] = &[0x01, 0x11, 0x21, 0x31, 0x41];

pub static PROBES: &[Probe] = &[
    Probe::single("bt_handshake", probe_handshake).answers(answers!["bt_client", "bt_extensions"]),
    Probe::single("utp", probe_utp).gated(FIRST),
    Probe::units("utp_units", probe_utp_units).gated(FIRST),
];

const TYPES: [&str; 5] = ["data", "fin", "state", "reset", "syn"];
const ST_SYN: u8 = 4;
const HEADER: usize = 20;
/// Extensions followed; a chain that has not ended after this many is refused.
const MAX_EXTENSIONS: usize = 4;
const EXT_SELECTIVE_ACK: u8 = 1;
const EXT_BITS: u8 = 2;
/// libtorrent's `utp_close_reason` (src/utp_stream.cpp).
const EXT_CLOSE_REASON: u8 = 3;
/// Datagrams of a direction the units probe looks at.
const MAX_UNITS: usize = 8;
/// The largest forward step of the sequence number between two datagrams of one connection.
const MAX_STEP: u16 = 16;

/// The uTP packet type of a well-formed datagram, or None.
fn utp_type(data: &[u8]) -> Option<u8> {
    if data.len() < HEADER || data[0] & 0x0F != 1 || data[0] >> 4 > ST_SYN {
        return None;
    }
    let kind = data[0] >> 4;
    let (mut ext, mut off) = (data[1], HEADER);
    // One more round than extensions allowed: the last only sees the chain's end.
    let mut ended = false;
    for _ in 0..=MAX_EXTENSIONS {
        if ext == 0 {
            ended = true;
            break;
        }
        if !matches!(ext, EXT_SELECTIVE_ACK | EXT_BITS | EXT_CLOSE_REASON) {
            return None;
        }
        let &[next, len] = data.get(off..off + 2)? else {
            return None;
        };
        let bad_len = match ext {
            EXT_SELECTIVE_ACK => len == 0 || !len.is_multiple_of(4),
            EXT_CLOSE_REASON => len != 4,
            _ => len != 8,
        };
        if bad_len {
            return None;
        }
        off += 2 + usize::from(len);
        ext = next;
    }
    if !ended || off > data.len() {
        return None;
    }
    let has_payload = off < data.len();
    (has_payload == (kind == 0)).then_some(kind)
}

const PROTOCOL_NAME: &[u8] = b"\x13BitTorrent protocol";
const HANDSHAKE: usize = 68;
/// Reserved bits as (byte, mask, name): BEP 10, BEP 5, BEP 6, BEP 52.
const RESERVED_BITS: [(usize, u8, &str); 4] = [
    (5, 0x10, "extension_protocol"),
    (7, 0x01, "dht"),
    (7, 0x04, "fast"),
    (7, 0x10, "v2"),
];

/// An Azureus-style peer id's first eight bytes, `-` two letters four version characters `-`
/// (BEP 20), or None.
fn azureus_client(peer_id: &[u8]) -> Option<&[u8]> {
    let id = peer_id.get(..8)?;
    let shape = id[0] == b'-'
        && id[7] == b'-'
        && id[1..3]
            .iter()
            .all(|b| b.is_ascii_alphabetic() || *b == b'~')
        && id[3..7].iter().all(u8::is_ascii_alphanumeric);
    shape.then_some(id)
}

/// The peer wire handshake: needs the whole 68 bytes for the facts, refuses any other start.
pub fn probe_handshake(data: &[u8], _from_client: bool) -> ProbeResult {
    let n = data.len().min(PROTOCOL_NAME.len());
    if data[..n] != PROTOCOL_NAME[..n] {
        return ProbeResult::no();
    }
    let Some(hs) = data.get(..HANDSHAKE) else {
        return ProbeResult::more();
    };
    let (reserved, info_hash, peer_id) = (&hs[20..28], &hs[28..48], &hs[48..68]);
    let mut meta = Meta::new();
    meta.insert("bt_info_hash".into(), json!(hex(info_hash)));
    if let Some(client) = azureus_client(peer_id) {
        meta.insert("bt_client".into(), json!(clean_text(client, 8)));
    }
    let extensions: Vec<&str> = RESERVED_BITS
        .iter()
        .filter(|(byte, mask, _)| reserved[*byte] & mask != 0)
        .map(|(_, _, name)| *name)
        .collect();
    if !extensions.is_empty() {
        meta.insert("bt_extensions".into(), json!(extensions));
    }
    ProbeResult::hit_done(meta, true)
}

fn hit(kind: u8) -> ProbeResult {
    let mut meta = Meta::new();
    meta.insert("utp_type".into(), json!(TYPES[usize::from(kind)]));
    ProbeResult::hit(meta)
}

pub fn probe_utp(data: &[u8], _from_client: bool) -> ProbeResult {
    utp_type(data).map_or_else(ProbeResult::no, hit)
}

pub fn probe_utp_units(units: &[&[u8]], _from_client: bool) -> ProbeResult {
    let mut heads: Vec<(u16, u16, u8)> = Vec::with_capacity(MAX_UNITS);
    for unit in units.iter().take(MAX_UNITS) {
        let Some(kind) = utp_type(unit) else {
            return ProbeResult::no();
        };
        if kind == ST_SYN {
            return hit(kind);
        }
        // Connection id at 2, sequence number at 16 (a match is at least 20 bytes).
        let conn = u16::from_be_bytes([unit[2], unit[3]]);
        let seq = u16::from_be_bytes([unit[16], unit[17]]);
        heads.push((conn, seq, kind));
    }
    for pair in heads.windows(2) {
        let ((conn_a, seq_a, _), (conn_b, seq_b, kind)) = (pair[0], pair[1]);
        if conn_a == conn_b && seq_b.wrapping_sub(seq_a) <= MAX_STEP {
            return hit(kind);
        }
    }
    ProbeResult::no()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    #[test]
    fn a_handshake_gives_the_info_hash_the_client_and_the_extensions() {
        // libtorrent 2.0.8's handshake (captures/bittorrent-6881.pcap).
        let mut hs = b"\x13BitTorrent protocol".to_vec();
        hs.extend([0, 0, 0, 0, 0, 0x10, 0, 0x05]);
        hs.extend([0xab; 20]);
        hs.extend(b"-LT2080-abcdefghijkl");
        let r = probe_handshake(&hs, true);
        assert_eq!((r.status, r.done), (Status::Match, true));
        assert_eq!(
            r.meta,
            json!({"bt_info_hash": "ab".repeat(20), "bt_client": "-LT2080-",
                   "bt_extensions": ["extension_protocol", "dht", "fast"]})
            .as_object()
            .cloned()
            .unwrap()
        );
        assert_eq!(probe_handshake(&hs[..40], true).status, Status::More);
        assert_eq!(probe_handshake(&hs[..5], true).status, Status::More);
        // A peer id of another shape (Mainline's "M7-2-0--") names no client.
        hs[48..56].copy_from_slice(b"M7-2-0--");
        assert!(!probe_handshake(&hs, true).meta.contains_key("bt_client"));
        assert_eq!(
            probe_handshake(b"\x13BitTorrent pro!", true).status,
            Status::No
        );
        assert_eq!(probe_handshake(b"GET /", true).status, Status::No);
    }

    #[test]
    fn libtorrents_close_reason_extension_is_utp() {
        // ST_FIN with extension 3 (close reason, 4 bytes: reserved, reason 6 upload_to_upload).
        let mut fin = header(1, 3, 0xa95e, 7);
        fin.extend([0, 4, 0, 0, 0, 6]);
        assert_eq!(probe_utp(&fin, true).status, Status::Match);
        let mut bad = header(1, 3, 0xa95e, 7);
        bad.extend([0, 8, 0, 0, 0, 6, 0, 0, 0, 0]);
        assert_eq!(probe_utp(&bad, true).status, Status::No);
    }

    #[test]
    fn python_vectors() {
        for name in ["utp", "utp_units"] {
            crate::detect::probes::vectors::replay(name);
        }
    }

    #[test]
    fn no_panic_on_hostile_shapes() {
        for name in ["bt_handshake", "utp", "utp_units"] {
            crate::detect::probes::vectors::never_panics(name);
        }
    }

    #[test]
    fn matching_vectors_start_with_a_first_byte() {
        for name in ["utp", "utp_units"] {
            crate::detect::probes::vectors::first_bytes_hold(name);
        }
    }

    /// A uTP header (BEP 29): type/version, extension, connection id, timestamps, window, seq, ack.
    fn header(kind: u8, ext: u8, conn: u16, seq: u16) -> Vec<u8> {
        let mut p = vec![kind << 4 | 1, ext];
        p.extend_from_slice(&conn.to_be_bytes());
        p.extend_from_slice(&[0x3b, 0x9a, 0xca, 0x00, 0, 0, 0, 0, 0, 0x10, 0, 0]);
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p
    }

    #[test]
    fn syn_then_data() {
        let syn = header(4, 0, 0x1234, 1);
        assert_eq!(
            probe_utp(&syn, true).meta,
            json!({"utp_type": "syn"}).as_object().cloned().unwrap()
        );
        assert_eq!(probe_utp_units(&[&syn], true).status, Status::Match);
        // ST_DATA must carry a payload, ST_STATE must not.
        let mut data = header(0, 0, 0x1235, 2);
        assert_eq!(probe_utp(&data, true).status, Status::No);
        data.extend_from_slice(b"\x13BitTorrent protocol");
        let mut data2 = header(0, 0, 0x1235, 3);
        data2.extend_from_slice(&[0u8; 8]);
        assert_eq!(
            probe_utp_units(&[&data, &data2], true).meta["utp_type"],
            "data"
        );
        // A lone data packet is too weak for the units probe.
        assert_eq!(probe_utp_units(&[&data], true).status, Status::No);
    }

    #[test]
    fn selective_ack_extension() {
        // ST_STATE with a selective ACK extension (type 1, 4-byte bitmask), then the chain's end.
        let mut state = header(2, 1, 0x1234, 7);
        state.extend_from_slice(&[0, 4, 0x01, 0, 0, 0]);
        assert_eq!(probe_utp(&state, false).meta["utp_type"], "state");
        let mut odd = header(2, 1, 0x1234, 7);
        odd.extend_from_slice(&[0, 3, 0x01, 0, 0]);
        assert_eq!(probe_utp(&odd, false).status, Status::No);
    }
}
