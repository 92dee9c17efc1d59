//! QUIC probe: long-header packets, and the client Initial decrypted down to its ClientHello.
//!
//! - A long header (RFC 8999, RFC 9000 §17.2) of a known version (v1, v2 per RFC 9369, drafts,
//!   Google Q0xx/T0xx, the reserved 0x?a?a?a?a versions), fixed bit set, connection IDs of at
//!   most 20 bytes and lengths consistent with the datagram matches. Version Negotiation
//!   (version 0) matches from the server only.
//! - For a client Initial of a version with a known salt, the Initial keys come from the
//!   Destination Connection ID (RFC 9001 §5.2, RFC 9369 §3.3.1): header protection is removed,
//!   the payload decrypted, the CRYPTO frames of every coalesced Initial reassembled (bounded)
//!   and the ClientHello handed to the TLS hello parser.
//!
//! Meta: `quic_version`, `quic_packet`, `quic_decrypted`, and the ClientHello keys with the "q"
//! JA4 prefix. `quic_units` does the same over a direction's first datagrams, so a ClientHello
//! split across Initial datagrams is read whole; the verdict comes from the first datagram.
#![forbid(unsafe_code)]

use super::tls_hello::{be24, client_hello_meta, parse_client_hello, HS_CLIENT_HELLO};
use super::{byte_range, Probe, ProbeResult};
use crate::meta::{Meta, Value};
use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;

const MAX_INPUT: usize = 65536;
const MAX_CID: usize = 20;
/// Initial packets coalesced in one datagram that are read.
const MAX_COALESCED: usize = 4;
/// Reassembled CRYPTO stream bytes.
const MAX_CRYPTO: usize = 16384;
const MAX_FRAMES: usize = 512;
/// Datagrams `quic_units` reads.
const MAX_DATAGRAMS: usize = 8;
const TAG_LEN: usize = 16;

const V1: u32 = 0x0000_0001;
const V2: u32 = 0x6B33_43CF;
const SALT_V1: [u8; 20] =
    *b"\x38\x76\x2c\xf7\xf5\x59\x34\xb3\x4d\x17\x9a\xe6\xa4\xc8\x0c\xad\xcc\xbb\x7f\x0a";
const SALT_V2: [u8; 20] =
    *b"\x0d\xed\xe3\xde\xf7\x00\xa6\xdb\x81\x93\x81\xbe\x6e\x26\x9d\xcb\xf9\xbd\x2e\xd9";
const SALT_D29: [u8; 20] =
    *b"\xaf\xbf\xec\x28\x99\x93\xd2\x4c\x9e\x97\x86\xf1\x9c\x61\x11\xe0\x43\x90\xa8\x99";
const SALT_D23: [u8; 20] =
    *b"\xc3\xee\xf7\x12\xc7\x2e\xbb\x5a\x11\xa7\xd2\x43\x2b\xb4\x63\x65\xbe\xf9\xf5\x02";

/// The first datagram must open with a long header (RFC 9000 §17.2: the top bit set).
const LONG_HEADER: &[u8] = &byte_range::<128>(0x80);

/// A server's packet type and version (a Retry, a Version Negotiation) answer the client's.
const QUIC_ANSWERS: &[super::Answer] = answers!["quic_packet", "quic_version"];

pub static PROBES: &[Probe] = &[
    Probe::single("quic", probe)
        .gated(LONG_HEADER)
        .answers(QUIC_ANSWERS),
    Probe::units("quic_units", probe_units)
        .gated(LONG_HEADER)
        .answers(QUIC_ANSWERS),
];

/// The Initial salt of a version, None when we do not know it.
fn initial_salt(version: u32) -> Option<&'static [u8; 20]> {
    match version {
        V1 | 0xFF00_0021 | 0xFF00_0022 => Some(&SALT_V1),
        V2 => Some(&SALT_V2),
        0xFF00_0017..=0xFF00_001C => Some(&SALT_D23),
        0xFF00_001D..=0xFF00_0020 => Some(&SALT_D29),
        _ => None,
    }
}

/// Google QUIC versions: "Q" or "T" and three ASCII digits.
fn google_version(version: u32) -> Option<[u8; 4]> {
    let raw = version.to_be_bytes();
    (matches!(raw[0], b'Q' | b'T') && raw[1..].iter().all(u8::is_ascii_digit)).then_some(raw)
}

fn version_name(version: u32) -> String {
    match version {
        0 => "negotiation".into(),
        V1 => "1".into(),
        V2 => "2".into(),
        0xFF00_0001..=0xFF00_00FF => format!("draft-{}", version & 0xFF),
        _ => match google_version(version) {
            Some(raw) => raw.iter().map(|b| char::from(*b)).collect(),
            None => format!("0x{version:08x}"),
        },
    }
}

fn known_version(version: u32) -> bool {
    initial_salt(version).is_some()
        || (0xFF00_0001..=0xFF00_00FF).contains(&version)
        || google_version(version).is_some()
        || (version & 0x0F0F_0F0F) == 0x0A0A_0A0A // RFC 9000 §15 reserved (greasing) versions
}

/// A variable-length integer (RFC 9000 §16) at `off`: (value, offset after it).
fn varint(data: &[u8], off: usize) -> Option<(u64, usize)> {
    let first = *data.get(off)?;
    let size = 1usize << (first >> 6);
    let bytes = data.get(off + 1..off + size)?;
    let value = bytes
        .iter()
        .fold(u64::from(first & 0x3F), |v, b| (v << 8) | u64::from(*b));
    Some((value, off + size))
}

/// `start + len` when it stays within `limit`.
fn end_within(start: usize, len: u64, limit: usize) -> Option<usize> {
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    (end <= limit).then_some(end)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum PacketType {
    Initial,
    ZeroRtt,
    Handshake,
    Retry,
    VersionNegotiation,
}

impl PacketType {
    fn of(first: u8, version: u32) -> Self {
        const V1_TYPES: [PacketType; 4] = [
            PacketType::Initial,
            PacketType::ZeroRtt,
            PacketType::Handshake,
            PacketType::Retry,
        ];
        const V2_TYPES: [PacketType; 4] = [
            PacketType::Retry,
            PacketType::Initial,
            PacketType::ZeroRtt,
            PacketType::Handshake,
        ];
        let bits = usize::from((first >> 4) & 3);
        if version == V2 {
            V2_TYPES[bits]
        } else {
            V1_TYPES[bits]
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::ZeroRtt => "0rtt",
            Self::Handshake => "handshake",
            Self::Retry => "retry",
            Self::VersionNegotiation => "version_negotiation",
        }
    }
}

/// Header fields of one long-header packet; offsets are into the datagram.
struct Packet<'a> {
    version: u32,
    dcid: &'a [u8],
    kind: PacketType,
    start: usize,
    /// Where the packet number starts (Initial, 0-RTT and Handshake packets).
    pn_offset: usize,
    end: usize,
}

/// The long-header packet at `off`, None when malformed.
fn parse_long(data: &[u8], off: usize) -> Option<Packet<'_>> {
    if off + 7 > data.len() {
        return None;
    }
    let first = data[off];
    if first & 0x80 == 0 {
        return None;
    }
    let version = u32::from_be_bytes(data.get(off + 1..off + 5)?.try_into().ok()?);
    let mut pos = off + 5;
    let dcid_len = usize::from(data[pos]);
    if dcid_len > MAX_CID || pos + 1 + dcid_len >= data.len() {
        return None;
    }
    let dcid = &data[pos + 1..pos + 1 + dcid_len];
    pos += 1 + dcid_len;
    let scid_len = usize::from(data[pos]);
    if scid_len > MAX_CID || pos + 1 + scid_len > data.len() {
        return None;
    }
    pos += 1 + scid_len;
    let mut pkt = Packet {
        version,
        dcid,
        kind: PacketType::VersionNegotiation,
        start: off,
        pn_offset: 0,
        end: data.len(),
    };
    if version == 0 {
        let rest = data.len() - pos;
        return (rest >= 4 && rest.is_multiple_of(4)).then_some(pkt);
    }
    if first & 0x40 == 0 || !known_version(version) {
        return None;
    }
    pkt.kind = PacketType::of(first, version);
    if pkt.kind == PacketType::Retry {
        return (data.len() - pos >= 16).then_some(pkt);
    }
    if pkt.kind == PacketType::Initial {
        let (token_len, after) = varint(data, pos)?;
        pos = end_within(after, token_len, data.len())?;
    }
    let (length, after) = varint(data, pos)?;
    if length < 20 {
        return None;
    }
    pkt.end = end_within(after, length, data.len())?;
    pkt.pn_offset = after;
    Some(pkt)
}

// --------------------------------------------------------------------------- keys and decryption

/// Keys protecting the client's Initial packets.
struct Keys {
    aead: Aes128Gcm,
    iv: [u8; 12],
    hp: Aes128,
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with SHA-256 and an empty context.
fn expand_label(secret: &Hkdf<Sha256>, label: &[&[u8]], out: &mut [u8]) -> Option<()> {
    let label_len: usize = 6 + label.iter().map(|l| l.len()).sum::<usize>();
    let length = u16::try_from(out.len()).ok()?.to_be_bytes();
    let mut info = Vec::with_capacity(4 + label_len);
    info.extend_from_slice(&length);
    info.push(u8::try_from(label_len).ok()?);
    info.extend_from_slice(b"tls13 ");
    for part in label {
        info.extend_from_slice(part);
    }
    info.push(0);
    secret.expand(&info, out).ok()
}

/// The client Initial keys for a DCID (RFC 9001 §5.2; RFC 9369 §3.3.1 for v2's salt and labels).
fn initial_keys(dcid: &[u8], version: u32) -> Option<Keys> {
    let salt = initial_salt(version)?;
    let initial = Hkdf::<Sha256>::new(Some(salt), dcid);
    let mut client = [0u8; 32];
    expand_label(&initial, &[b"client in"], &mut client)?;
    let client = Hkdf::<Sha256>::from_prk(&client).ok()?;
    let prefix: &[u8] = if version == V2 { b"quicv2 " } else { b"quic " };
    let (mut key, mut iv, mut hp) = ([0u8; 16], [0u8; 12], [0u8; 16]);
    expand_label(&client, &[prefix, b"key"], &mut key)?;
    expand_label(&client, &[prefix, b"iv"], &mut iv)?;
    expand_label(&client, &[prefix, b"hp"], &mut hp)?;
    Some(Keys {
        aead: Aes128Gcm::new(&key.into()),
        iv,
        hp: Aes128::new(&hp.into()),
    })
}

/// Remove header protection from and decrypt one long-header packet (exactly its bytes).
fn decrypt(packet: &[u8], pn_offset: usize, keys: &Keys) -> Option<Vec<u8>> {
    let sample = packet.get(pn_offset + 4..pn_offset + 4 + 16)?;
    let mut mask = aes::Block::clone_from_slice(sample);
    keys.hp.encrypt_block(&mut mask);
    let first = packet[0] ^ (mask[0] & 0x0F);
    let pn_len = usize::from(first & 0x03) + 1;
    let mut header = packet.get(..pn_offset + pn_len)?.to_vec();
    header[0] = first;
    let mut nonce = keys.iv;
    for i in 0..pn_len {
        let b = header[pn_offset + i] ^ mask[1 + i];
        header[pn_offset + i] = b;
        nonce[12 - pn_len + i] ^= b;
    }
    let sealed = packet.get(pn_offset + pn_len..)?;
    let (ciphertext, tag) = sealed.split_at(sealed.len().checked_sub(TAG_LEN)?);
    let mut plain = ciphertext.to_vec();
    keys.aead
        .decrypt_in_place_detached(
            Nonce::from_slice(&nonce),
            &header,
            &mut plain,
            Tag::from_slice(tag),
        )
        .ok()?;
    Some(plain)
}

/// (offset, data) of the CRYPTO frames of an Initial payload; stops at an unexpected frame.
fn crypto_frames<'a>(payload: &'a [u8], out: &mut Vec<(u64, &'a [u8])>) {
    let mut off = 0;
    for _ in 0..MAX_FRAMES {
        let Some(&ftype) = payload.get(off) else {
            return;
        };
        off += 1;
        match ftype {
            0x00 | 0x01 => {} // PADDING, PING
            0x02 | 0x03 => {
                // ACK: largest, delay, range count, first range, ranges, [ECN counts]
                let mut fields = [0u64; 4];
                for field in &mut fields {
                    let Some((v, next)) = varint(payload, off) else {
                        return;
                    };
                    *field = v;
                    off = next;
                }
                let extra = 2 * fields[2].min(256) + if ftype == 0x03 { 3 } else { 0 };
                for _ in 0..extra {
                    let Some((_, next)) = varint(payload, off) else {
                        return;
                    };
                    off = next;
                }
            }
            0x06 => {
                let Some((offset, next)) = varint(payload, off) else {
                    return;
                };
                let Some((len, start)) = varint(payload, next) else {
                    return;
                };
                let Some(end) = end_within(start, len, payload.len()) else {
                    return;
                };
                out.push((offset, &payload[start..end]));
                off = end;
            }
            _ => return, // CONNECTION_CLOSE or anything else ends what we read
        }
    }
}

/// The contiguous CRYPTO stream from offset 0, bounded by MAX_CRYPTO.
fn reassemble(chunks: &mut [(u64, &[u8])]) -> Vec<u8> {
    chunks.sort_by_key(|c| c.0); // stable: the first of equal offsets wins, as in the oracle
    let mut stream = Vec::new();
    for &(offset, chunk) in chunks.iter() {
        let Ok(offset) = usize::try_from(offset) else {
            break;
        };
        if offset > stream.len() || offset >= MAX_CRYPTO {
            break;
        }
        let end = offset.saturating_add(chunk.len()).min(MAX_CRYPTO);
        if end > stream.len() {
            stream.extend_from_slice(&chunk[stream.len() - offset..end - offset]);
        }
    }
    stream
}

/// Decrypted payloads of the Initial packets coalesced in one datagram.
fn initial_payloads(
    data: &[u8],
    first: Option<Packet>,
    version: u32,
    keys: &Keys,
    out: &mut Vec<Vec<u8>>,
) -> bool {
    let mut decrypted = false;
    let mut pkt = first;
    for _ in 0..MAX_COALESCED {
        let Some(p) = pkt
            .take()
            .filter(|p| p.kind == PacketType::Initial && p.version == version)
        else {
            break;
        };
        if let Some(plain) = decrypt(&data[p.start..p.end], p.pn_offset - p.start, keys) {
            decrypted = true;
            out.push(plain);
        }
        pkt = if p.end < data.len() {
            parse_long(data, p.end)
        } else {
            None
        };
    }
    decrypted
}

fn classify(units: &[&[u8]], from_client: bool) -> ProbeResult {
    let Some(data) = units.first() else {
        return ProbeResult::no();
    };
    let Some(first) = parse_long(data, 0) else {
        return ProbeResult::no();
    };
    let version = first.version;
    let mut meta = Meta::new();
    meta.insert("quic_version".into(), Value::from(version_name(version)));
    meta.insert("quic_packet".into(), Value::from(first.kind.name()));
    match first.kind {
        PacketType::VersionNegotiation | PacketType::Retry if from_client => {
            return ProbeResult::no()
        }
        PacketType::Initial if from_client => {}
        _ => return ProbeResult::hit(meta),
    }
    let Some(keys) = initial_keys(first.dcid, version) else {
        return ProbeResult::hit(meta);
    };
    // Every client Initial is protected with keys from the first Initial's DCID (RFC 9001 §5.2),
    // so later datagrams add the rest of a ClientHello that did not fit in the first one.
    let mut payloads = Vec::new();
    let decrypted = initial_payloads(data, Some(first), version, &keys, &mut payloads);
    if decrypted {
        for later in units.iter().take(MAX_DATAGRAMS).skip(1) {
            initial_payloads(later, parse_long(later, 0), version, &keys, &mut payloads);
        }
    }
    meta.insert("quic_decrypted".into(), Value::Bool(decrypted));
    let mut chunks = Vec::new();
    for payload in &payloads {
        crypto_frames(payload, &mut chunks);
    }
    let stream = reassemble(&mut chunks);
    if stream.len() >= 4 + 2 && stream[0] == HS_CLIENT_HELLO {
        let length = be24(&stream, 1).unwrap_or(0);
        let body = &stream[4..(4 + length).min(stream.len())];
        if let Some(ch) = parse_client_hello(body, false, Some(length)) {
            client_hello_meta(&ch, 'q', &mut meta);
        }
    }
    ProbeResult::hit(meta)
}

/// Classify one QUIC datagram (see the module docs).
pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    classify(&[&data[..data.len().min(MAX_INPUT)]], from_client)
}

/// Like `probe` on the first datagram, with the CRYPTO data of the client Initials of the
/// following datagrams (up to MAX_DATAGRAMS) added: a ClientHello too big for one datagram
/// (post-quantum key shares) is read whole. The first datagram decides the verdict.
pub fn probe_units(units: &[&[u8]], from_client: bool) -> ProbeResult {
    let mut cut = [&[][..]; MAX_DATAGRAMS];
    let count = units.len().min(MAX_DATAGRAMS);
    for (slot, unit) in cut.iter_mut().zip(units) {
        *slot = &unit[..unit.len().min(MAX_INPUT)];
    }
    classify(&cut[..count], from_client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    const RFC9001: &[u8] =
        include_bytes!("../../../../tests/probes/data/rfc9001_a2_client_initial.bin");
    const RFC9369: &[u8] =
        include_bytes!("../../../../tests/probes/data/rfc9369_a2_client_initial.bin");
    const DCID: [u8; 8] = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];

    #[test]
    fn python_vectors() {
        for name in ["quic", "quic_units"] {
            crate::detect::probes::vectors::replay(name);
        }
    }

    #[test]
    fn matches_open_with_a_long_header() {
        for name in ["quic", "quic_units"] {
            assert!(crate::detect::probes::vectors::first_bytes_hold(name) > 0);
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        const_hex::decode(s).unwrap()
    }

    #[test]
    fn rfc9001_a1_keys() {
        // RFC 9001 A.1: client key, iv and hp from DCID 0x8394c8f03e515708.
        let keys = initial_keys(&DCID, V1).unwrap();
        assert_eq!(keys.iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
        let mut block = aes::Block::default();
        keys.hp.encrypt_block(&mut block);
        let hp = Aes128::new_from_slice(&hex("9f50449e04a0e810283a1e9933adedd2")).unwrap();
        let mut want = aes::Block::default();
        hp.encrypt_block(&mut want);
        assert_eq!(block, want);
    }

    #[test]
    fn rfc9001_a2_header_protection() {
        // RFC 9001 A.2: sample d1b1c98dd7689fb8ec11d242b123dc9b gives mask 437b9aec36.
        let keys = initial_keys(&DCID, V1).unwrap();
        let mut mask = aes::Block::clone_from_slice(&hex("d1b1c98dd7689fb8ec11d242b123dc9b"));
        keys.hp.encrypt_block(&mut mask);
        assert_eq!(mask[..5], hex("437b9aec36")[..]);
    }

    #[test]
    fn rfc9369_a1_keys() {
        // RFC 9369 A.1: v2 client iv and hp mask of the A.2 sample.
        let keys = initial_keys(&DCID, V2).unwrap();
        assert_eq!(keys.iv.to_vec(), hex("91f73e2351d8fa91660e909f"));
        let mut block = aes::Block::default();
        keys.hp.encrypt_block(&mut block);
        let hp = Aes128::new_from_slice(&hex("45b95e15235d6f45a6b19cbcb0294ba9")).unwrap();
        let mut want = aes::Block::default();
        hp.encrypt_block(&mut want);
        assert_eq!(block, want);
    }

    fn check_initial(datagram: &[u8], version: &str) {
        let r = probe(datagram, true);
        assert_eq!(r.status, Status::Match);
        assert_eq!(r.meta["quic_version"], version);
        assert_eq!(r.meta["quic_packet"], "initial");
        assert_eq!(r.meta["quic_decrypted"], true);
        // The RFC's ClientHello, with the oracle's fingerprints of it.
        assert_eq!(r.meta["tls_version"], "1.3");
        assert_eq!(r.meta["sni"], "example.com");
        assert_eq!(r.meta["alpn"], serde_json::json!(["alpn"]));
        assert_eq!(r.meta["ja3"], "41bc9ae914d6cb3bd0bd0a5453ab7d7f");
        assert_eq!(
            r.meta["ja3_string"],
            "771,4865-4866,0-65281-10-16-5-51-43-13-45-28-57,29-23-24,"
        );
        assert_eq!(r.meta["ja4"], "q13d0211an_62ed6f6ca7ad_4d634acda6c0");
        assert_eq!(probe(datagram, false).meta.get("quic_decrypted"), None);
    }

    #[test]
    fn rfc9001_a2_client_initial() {
        check_initial(RFC9001, "1");
        // A flipped payload byte fails authentication.
        let mut bad = RFC9001.to_vec();
        bad[100] ^= 1;
        let r = probe(&bad, true);
        assert_eq!(r.meta["quic_decrypted"], false);
        assert!(!r.meta.contains_key("tls_version"));
    }

    #[test]
    fn rfc9369_a2_client_initial() {
        check_initial(RFC9369, "2");
    }

    #[test]
    fn units_read_the_first_datagram() {
        let r = probe_units(&[RFC9001, RFC9369], true);
        assert_eq!(r.meta["quic_version"], "1");
        assert_eq!(probe_units(&[], true).status, Status::No);
    }

    #[test]
    fn never_panics() {
        for cut in 0..RFC9001.len().min(120) {
            let _ = probe(&RFC9001[..cut], true);
            let mut flipped = RFC9001.to_vec();
            flipped[cut] ^= 0xff;
            let _ = probe(&flipped, true);
            let _ = probe(&flipped, false);
        }
    }
}
