//! OpenVPN control channel: the hard-reset packets that open every session.
//!
//! `openvpn`: one UDP datagram; `openvpn_tcp`: the stream, each packet behind a 2-byte length.
//! Client: P_CONTROL_HARD_RESET_CLIENT_V2 or V3 (opcode 7 or 10, key id 0) with a session id,
//! then one of: no packet authentication (an empty ACK array and message packet-id 0: 14 bytes);
//! tls-auth, an HMAC of 16-64 bytes, then packet-id 1 and a timestamp; tls-crypt, packet-id 1
//! and a timestamp, then a 32-byte tag and the encrypted rest (doc/tls-crypt.txt). Server: the
//! matching P_CONTROL_HARD_RESET_SERVER_V2 (opcode 8) acknowledging packet 0.
//!
//! Meta: `openvpn_opcode` ("hard-reset-client-v2"...), `openvpn_tls_auth` (bool).
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[
    Probe::single("openvpn", probe).answers(answers!["openvpn_opcode"]),
    Probe::single("openvpn_tcp", probe_tcp).answers(answers!["openvpn_opcode"]),
];

const HMAC_SIZES: [usize; 5] = [16, 20, 32, 48, 64];
const OP_CLIENT_V2: u8 = 7;
const OP_SERVER_V2: u8 = 8;
const OP_CLIENT_V3: u8 = 10;
/// How far a TCP packet's announced length may run past the bytes seen so far.
const TCP_SLACK: usize = 4096;

fn opcode_name(opcode: u8, from_client: bool) -> Option<&'static str> {
    match (opcode, from_client) {
        (OP_CLIENT_V2, true) => Some("hard-reset-client-v2"),
        (OP_CLIENT_V3, true) => Some("hard-reset-client-v3"),
        (OP_SERVER_V2, false) => Some("hard-reset-server-v2"),
        _ => None,
    }
}

/// Whether the hard reset carries packet authentication, or None if it is no hard reset.
fn tls_auth(data: &[u8], opcode: u8, from_client: bool) -> Option<bool> {
    if opcode == OP_CLIENT_V3 {
        // The V3 reset exists for tls-crypt-v2 only.
        return tls_crypt_v2(data).then_some(true);
    }
    // Opcode/key id, session id, ACK array length, [acked packet-id, remote session id], packet-id.
    let acks: u8 = if from_client { 0 } else { 1 };
    let plain = if from_client { 14 } else { 26 };
    if data.len() == plain && data.get(9) == Some(&acks) && data.ends_with(&[0, 0, 0, 0]) {
        return Some(false);
    }
    // tls-crypt: packet-id 1 and a timestamp right after the session id, the tag, then the
    // encrypted ACK array and message packet-id: exactly what the plain reset carries after its
    // session id, so the length is exact. Packet-id 1 alone is no evidence: a DNS message with no
    // authority or additional records and a one-letter first label has 00 00 00 01 there too.
    if data.len() == TLS_CRYPT_HEADER + (plain - 9) && data.get(9..13) == Some(&[0, 0, 0, 1]) {
        return Some(true);
    }
    // With tls-auth an HMAC follows the session id, then packet-id 1 and a timestamp.
    for h in HMAC_SIZES {
        let packet_id = data.get(9 + h..13 + h);
        if data.len() >= plain + h + 8
            && packet_id == Some(&[0, 0, 0, 1])
            && data.get(17 + h) == Some(&acks)
        {
            return Some(true);
        }
    }
    None
}

/// tls-crypt's clear header: opcode, session id, replay packet-id and timestamp, 32-byte tag.
const TLS_CRYPT_HEADER: usize = 1 + 8 + 8 + 32;
/// A wrapped client key's length (doc/tls-crypt-v2.txt): its tag, the 2048-bit client key and
/// the length itself at least; `TLS_CRYPT_V2_MAX_WKC_LEN` at most.
const WKC_LEN: std::ops::RangeInclusive<usize> = (32 + 256 + 2)..=1024;

/// A tls-crypt-v2 hard reset (doc/tls-crypt-v2.txt): the clear header, the encrypted rest, then
/// the wrapped client key, whose 2-byte length closes the packet. The opcode alone is one
/// datagram in 256 (an HTTP/2 preface's `P`); the length's range leaves one in 90 of those.
/// The replay packet-id is not checked: clients do not all start it at 1.
fn tls_crypt_v2(data: &[u8]) -> bool {
    let n = data.len();
    if n < TLS_CRYPT_HEADER + WKC_LEN.start() {
        return false;
    }
    let wkc = usize::from(u16::from_be_bytes([data[n - 2], data[n - 1]]));
    WKC_LEN.contains(&wkc) && TLS_CRYPT_HEADER + wkc <= n
}

pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    if data.len() < 14 || data[0] & 7 != 0 {
        return ProbeResult::no();
    }
    let opcode = data[0] >> 3;
    let Some(name) = opcode_name(opcode, from_client) else {
        return ProbeResult::no();
    };
    let Some(auth) = tls_auth(data, opcode, from_client) else {
        return ProbeResult::no();
    };
    let mut meta = Meta::new();
    meta.insert("openvpn_opcode".into(), json!(name));
    meta.insert("openvpn_tls_auth".into(), json!(auth));
    ProbeResult::hit(meta)
}

pub fn probe_tcp(data: &[u8], from_client: bool) -> ProbeResult {
    let Some(&[hi, lo]) = data.get(..2) else {
        return ProbeResult::no();
    };
    let length = usize::from(u16::from_be_bytes([hi, lo]));
    if data.len() < 16 || length < 14 || length + 2 > data.len() + TCP_SLACK {
        return ProbeResult::no();
    }
    let end = (2 + length).min(data.len());
    probe(&data[2..end], from_client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    #[test]
    fn python_vectors() {
        for name in ["openvpn", "openvpn_tcp"] {
            crate::detect::probes::vectors::replay(name);
        }
    }

    #[test]
    fn no_panic_on_hostile_shapes() {
        for name in ["openvpn", "openvpn_tcp"] {
            crate::detect::probes::vectors::never_panics(name);
        }
    }

    const SESSION: [u8; 8] = [0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f, 0x70, 0x81];

    /// P_CONTROL_HARD_RESET_CLIENT_V2 without tls-auth: opcode 7 key 0, session id, no acks,
    /// message packet-id 0.
    fn client_plain() -> Vec<u8> {
        let mut p = vec![OP_CLIENT_V2 << 3];
        p.extend_from_slice(&SESSION);
        p.extend_from_slice(&[0, 0, 0, 0, 0]);
        p
    }

    #[test]
    fn hard_reset_plain_udp_and_tcp() {
        let r = probe(&client_plain(), true);
        assert_eq!(
            r.meta,
            json!({"openvpn_opcode": "hard-reset-client-v2", "openvpn_tls_auth": false})
                .as_object()
                .cloned()
                .unwrap()
        );
        // The server's direction never sends a client reset.
        assert_eq!(probe(&client_plain(), false).status, Status::No);
        // The stream form has a 2-byte length first; 16 bytes at least are needed.
        let mut tcp = vec![0, 14];
        tcp.extend_from_slice(&client_plain());
        assert_eq!(probe_tcp(&tcp, true).status, Status::Match);
        assert_eq!(probe_tcp(&tcp[..15], true).status, Status::No);
    }

    /// P_CONTROL_HARD_RESET_CLIENT_V3: the tls-crypt header (packet-id 1, a timestamp, the tag),
    /// `encrypted` bytes, then a wrapped client key of `wkc` bytes ending in its length.
    fn client_v3(encrypted: usize, wkc: usize) -> Vec<u8> {
        let mut p = vec![OP_CLIENT_V3 << 3];
        p.extend_from_slice(&SESSION);
        p.extend_from_slice(&[0, 0, 0, 1, 0x66, 0x0e, 0x2f, 0x10]);
        p.extend_from_slice(&[0xa5; 32]);
        p.extend(std::iter::repeat_n(0x5a, encrypted + wkc - 2));
        p.extend_from_slice(&(wkc as u16).to_be_bytes());
        p
    }

    #[test]
    fn hard_reset_with_tls_crypt_v2() {
        let r = probe(&client_v3(5, 290), true);
        assert_eq!(r.meta["openvpn_opcode"], "hard-reset-client-v3");
        assert_eq!(r.meta["openvpn_tls_auth"], true);
        assert_eq!(probe(&client_v3(40, 1024), true).status, Status::Match);
        // A key shorter than its tag and the client key, or longer than OpenVPN wraps.
        assert_eq!(probe(&client_v3(5, 289), true).status, Status::No);
        assert_eq!(probe(&client_v3(5, 1025), true).status, Status::No);
        // A wrapped key longer than the packet.
        let mut short = client_v3(5, 290);
        short.drain(60..70);
        assert_eq!(probe(&short, true).status, Status::No);
        // An HTTP/2 preface opens with the same byte.
        let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        preface.extend_from_slice(&[0, 0, 0x12, 4, 0, 0, 0, 0, 0]);
        preface.resize(400, 0);
        assert_eq!(probe(&preface, true).status, Status::No);
    }

    #[test]
    fn hard_reset_with_tls_auth() {
        // Client V2 with a 20-byte HMAC-SHA1, packet-id 1, timestamp, no acks, message packet-id 0.
        let mut c = vec![OP_CLIENT_V2 << 3];
        c.extend_from_slice(&SESSION);
        c.extend_from_slice(&[0xee; 20]);
        c.extend_from_slice(&[0, 0, 0, 1, 0x66, 0x0e, 0x2f, 0x10, 0, 0, 0, 0, 0]);
        assert_eq!(probe(&c, true).meta["openvpn_tls_auth"], true);
        // Server V2 reply acknowledging packet 0: one ack, the client's session id.
        let mut s = vec![OP_SERVER_V2 << 3];
        s.extend_from_slice(&[0x99; 8]);
        s.extend_from_slice(&[0xee; 20]);
        s.extend_from_slice(&[0, 0, 0, 1, 0x66, 0x0e, 0x2f, 0x10, 1, 0, 0, 0, 0]);
        s.extend_from_slice(&SESSION);
        s.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(
            probe(&s, false).meta,
            json!({"openvpn_opcode": "hard-reset-server-v2", "openvpn_tls_auth": true})
                .as_object()
                .cloned()
                .unwrap()
        );
    }

    /// OpenVPN 2.6.14 with `--tls-crypt`, from captures/openvpn-1194.pcap: the client's reset
    /// (54 bytes) and the server's (66 bytes).
    const TLS_CRYPT_CLIENT: &str =
        "382419916d7d53f620000000016b13a87d297ec9cb3ed992a0573a09cd81d974\
         68b3badb1203ac66c36517075b64c094711456156c98";
    const TLS_CRYPT_SERVER: &str =
        "40a77c0397aa4f6136000000016b13a87db847094365e8a3bebdfaee6c3032d9\
         1992630e7b73a7e6093bcf59b1cde901c9a04f76fcc75925df7805a6695b71c12cc8";

    fn hex(s: &str) -> Vec<u8> {
        const_hex::decode(s).unwrap()
    }

    #[test]
    fn hard_reset_with_tls_crypt() {
        let c = hex(TLS_CRYPT_CLIENT);
        let s = hex(TLS_CRYPT_SERVER);
        assert_eq!((c.len(), s.len()), (54, 66));
        let r = probe(&c, true);
        assert_eq!(r.meta["openvpn_opcode"], "hard-reset-client-v2");
        assert_eq!(r.meta["openvpn_tls_auth"], true);
        assert_eq!(
            probe(&s, false).meta["openvpn_opcode"],
            "hard-reset-server-v2"
        );
        // Cut short of the encrypted ACK array and packet-id; a replay packet-id other than 1.
        assert_eq!(probe(&c[..53], true).status, Status::No);
        assert_eq!(probe(&s[..65], false).status, Status::No);
        let mut later = c.clone();
        later[12] = 2;
        assert_eq!(probe(&later, true).status, Status::No);
    }

    /// A DNS answer whose id starts with 0x38 (the client reset's opcode), no authority or
    /// additional records, and a one-letter first label: 00 00 00 01 where tls-crypt's packet-id
    /// is. From benchmarks' generated slow-link capture, where it was named OpenVPN while the
    /// length was not checked.
    #[test]
    fn a_dns_answer_is_not_a_tls_crypt_reset() {
        let answer = hex(
            "383e81800001000100000000016d0c74756e6472616665726e36310364657600001c0001c00c001c000100000e10\
             001020010db827e5f02e71b69723505820e9",
        );
        assert_eq!(answer.len(), 64);
        assert_eq!(probe(&answer, true).status, Status::No);
    }
}
