//! DTLS probe: DTLS 1.0/1.2 records (RFC 6347 §4.1) and the ClientHello inside them.
//!
//! Takes one UDP datagram, which must be a whole number of records (content type 20-23, version
//! 0xfeff, 0xfefd or 0xfefc, epoch, 48-bit sequence number, length).
//! - client side: a ClientHello in epoch 0 (a first fragment is enough) gives the TLS probe's
//!   ClientHello meta with the "d" JA4 prefix (`tls_truncated` for a fragment);
//! - server side: a HelloVerifyRequest gives `dtls_hello_verify`; a ServerHello the TLS probe's
//!   ServerHello meta;
//! - records of a later epoch (capture started mid-session) match with `tls_midstream`.
#![forbid(unsafe_code)]

use super::tls::{CT_ALERT, CT_APPDATA, CT_CCS, CT_HANDSHAKE};
use super::tls_hello::{
    be16, be24, client_hello_meta, parse_client_hello, parse_server_hello, server_hello_meta,
    HELLO_ANSWERS, HS_CLIENT_HELLO, HS_SERVER_HELLO, MAX_RECORD,
};
use super::{Probe, ProbeResult};
use crate::meta::{Meta, Value};

const MAX_INPUT: usize = 65536;
const MAX_RECORDS: usize = 64;
const HS_HELLO_VERIFY: u8 = 3;
const RECORD_HEADER: usize = 13;

pub static PROBES: &[Probe] = &[Probe::single("dtls", probe)
    .gated(&[20, 21, 22, 23])
    .answers(HELLO_ANSWERS)];

fn is_dtls_version(v: u16) -> bool {
    matches!(v, 0xFEFF | 0xFEFD | 0xFEFC)
}

/// (content type, epoch, payload) of the first record, when `data` is exactly a run of records.
fn first_record(data: &[u8]) -> Option<(u8, u16, &[u8])> {
    let mut first = None;
    let mut off = 0;
    let mut count = 0;
    while off < data.len() {
        if count >= MAX_RECORDS || off + RECORD_HEADER > data.len() {
            return None;
        }
        let ctype = data[off];
        let version = be16(data, off + 1)?;
        let epoch = be16(data, off + 3)?;
        let length = usize::from(be16(data, off + 11)?);
        if !(CT_CCS..=CT_APPDATA).contains(&ctype) || !is_dtls_version(version) {
            return None;
        }
        let payload = data
            .get(off + RECORD_HEADER..off + RECORD_HEADER + length)
            .filter(|_| length <= MAX_RECORD)?;
        first.get_or_insert((ctype, epoch, payload));
        off += RECORD_HEADER + length;
        count += 1;
    }
    first
}

/// (msg type, total length, fragment offset, fragment) of a DTLS handshake fragment.
fn handshake(payload: &[u8]) -> Option<(u8, usize, usize, &[u8])> {
    if payload.len() < 12 {
        return None;
    }
    let (length, frag_off, frag_len) = (be24(payload, 1)?, be24(payload, 6)?, be24(payload, 9)?);
    if frag_off + frag_len > length {
        return None;
    }
    Some((
        payload[0],
        length,
        frag_off,
        payload.get(12..12 + frag_len)?,
    ))
}

/// Classify one DTLS datagram (see the module docs).
pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    let data = &data[..data.len().min(MAX_INPUT)];
    let Some((ctype, epoch, payload)) = first_record(data) else {
        return ProbeResult::no();
    };
    if epoch != 0 || ctype != CT_HANDSHAKE {
        if epoch == 0 && ctype != CT_ALERT {
            return ProbeResult::no(); // epoch 0 carries handshake (or alerts) in the clear
        }
        let mut meta = Meta::new();
        meta.insert("tls_midstream".into(), Value::Bool(true));
        return ProbeResult::hit(meta);
    }
    let Some((msg_type, length, frag_off, fragment)) = handshake(payload) else {
        return ProbeResult::no();
    };
    let mut meta = Meta::new();
    if from_client {
        if msg_type != HS_CLIENT_HELLO || frag_off != 0 {
            return ProbeResult::no();
        }
        match parse_client_hello(fragment, true, Some(length)) {
            Some(ch) if ch.complete || fragment.len() < length => {
                client_hello_meta(&ch, 'd', &mut meta)
            }
            _ => return ProbeResult::no(),
        }
    } else if msg_type == HS_HELLO_VERIFY {
        let Some(&cookie_len) = fragment.get(2) else {
            return ProbeResult::no();
        };
        if fragment.len() != 3 + usize::from(cookie_len)
            || !be16(fragment, 0).is_some_and(is_dtls_version)
        {
            return ProbeResult::no();
        }
        // No tls_version: RFC 6347 §4.2.1 has servers put 1.0 here whatever they will negotiate.
        meta.insert("dtls_hello_verify".into(), Value::Bool(true));
    } else if msg_type == HS_SERVER_HELLO && frag_off == 0 {
        let Some(sh) = parse_server_hello(fragment, true) else {
            return ProbeResult::no();
        };
        meta = server_hello_meta(&sh);
    } else {
        return ProbeResult::no();
    }
    ProbeResult::hit(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    const HELLO: &[u8] = include_bytes!("../../../../tests/probes/data/dtls12_client_hello.bin");
    const REPLY: &[u8] = include_bytes!("../../../../tests/probes/data/dtls12_server_reply.bin");

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("dtls");
    }

    #[test]
    fn matches_open_with_a_record_type() {
        assert!(crate::detect::probes::vectors::first_bytes_hold("dtls") > 0);
    }

    #[test]
    fn dtls12_client_hello() {
        let r = probe(HELLO, true);
        assert_eq!(r.status, Status::Match);
        assert_eq!(r.meta["tls_version"], "dtls1.2");
        assert_eq!(r.meta["sni"], "dtls.example.com");
        assert_eq!(r.meta["alpn"], serde_json::json!(["webrtc", "c-webrtc"]));
        assert_eq!(r.meta["ja3"], "096df697a18c538158d6a52abc65a0db");
        assert_eq!(r.meta["ja4"], "dd2d2808wc_d943125447b4_e7e480e5a997");
        assert!(!r.done);
    }

    #[test]
    fn dtls12_server_reply() {
        let r = probe(REPLY, false);
        assert_eq!(r.status, Status::Match);
        assert_eq!(r.meta["dtls_hello_verify"], true);
        assert_eq!(probe(REPLY, true).status, Status::No);
    }

    #[test]
    fn later_epoch_is_midstream() {
        let rec = [23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 1, 0, 2, 9, 9];
        assert_eq!(probe(&rec, true).meta["tls_midstream"], true);
        assert_eq!(probe(&rec[..14], true).status, Status::No);
    }

    #[test]
    fn never_panics() {
        for cut in 0..HELLO.len() {
            let _ = probe(&HELLO[..cut], true);
            let mut flipped = HELLO.to_vec();
            flipped[cut] ^= 0xff;
            let _ = probe(&flipped, true);
            let _ = probe(&flipped, false);
        }
    }
}
