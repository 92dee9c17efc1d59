//! TLS probe: record layer, ClientHello / ServerHello / Certificate, JA3, JA3S and JA4.
//!
//! Looks at the first bytes of one direction of a TCP stream. Client side, a ClientHello
//! (possibly spread over several handshake records) gives `tls_version`, `sni`, `alpn`, `ja3`,
//! `ja3_string` and `ja4`. Server side, a ServerHello gives `tls_version`, `cipher`,
//! `cipher_name`, `alpn`, `ja3s`, `ja3s_string`; a Certificate in clear adds `cert_subject` and
//! `cert_issuer`. A stream opening with alert, change_cipher_spec or application_data records
//! matches with `tls_midstream` (and `tls_alert`); an SSLv2-compatible hello with
//! `tls_sslv2_hello`. The hello parsers live in tls_hello.rs, shared with dtls and quic.
#![forbid(unsafe_code)]

use super::tls_cert::certificate_meta;
use super::tls_hello::{
    be16, be24, client_hello_meta, parse_client_hello, parse_server_hello, server_hello_meta,
    version_name, HELLO_ANSWERS, HS_CLIENT_HELLO, HS_SERVER_HELLO, MAX_RECORD,
};
use super::{Probe, ProbeResult};
use crate::meta::{Meta, Value};
use std::borrow::Cow;

/// Bytes of input ever looked at.
const MAX_INPUT: usize = 65536;
/// A hello or an application-data record cut after this many bytes still matches (a hello
/// partially): the depth of a stream picked up in its middle (`reassembly::MIDSTREAM_DEPTH`)
/// may cut it, and no more of it will come.
const TRUNCATED_MATCH_AT: usize = crate::flow::reassembly::MIDSTREAM_DEPTH;
/// Records walked per input.
const MAX_RECORDS: usize = 256;
/// Handshake messages looked through for the Certificate after a ServerHello.
const MAX_MESSAGES: usize = 8;

pub const CT_CCS: u8 = 20;
pub const CT_ALERT: u8 = 21;
pub const CT_HANDSHAKE: u8 = 22;
pub const CT_APPDATA: u8 = 23;
const HS_CERTIFICATE: u8 = 11;

pub static PROBES: &[Probe] = &[Probe::single("tls", probe).answers(HELLO_ANSWERS)];

/// Validate as much of a record header as is present.
fn valid_record_header(header: &[u8]) -> bool {
    if header
        .first()
        .is_some_and(|t| !(CT_CCS..=CT_APPDATA).contains(t))
    {
        return false;
    }
    if header.get(1).is_some_and(|v| *v != 3) || header.get(2).is_some_and(|v| *v > 4) {
        return false;
    }
    match be16(header, 3) {
        Some(len) => !(usize::from(len) > MAX_RECORD || (len == 0 && header[0] != CT_APPDATA)),
        None => true,
    }
}

/// SSLv2-compatible ClientHello (RFC 5246 Appendix E.2), or None if not one.
fn sslv2_hello(data: &[u8]) -> Option<ProbeResult> {
    let (&b0, &b1) = (data.first()?, data.get(1)?);
    if b0 & 0x80 == 0 {
        return None;
    }
    let length = (usize::from(b0 & 0x7F) << 8) | usize::from(b1);
    if data.len() < 11 {
        return (data.len() < 3 || data[2] == 1).then(ProbeResult::more);
    }
    let version = be16(data, 3)?;
    let (cs_len, sid_len, chal_len) = (be16(data, 5)?, be16(data, 7)?, be16(data, 9)?);
    if data[2] != 1 || !matches!(version, 0x0002 | 0x0300 | 0x0301 | 0x0302 | 0x0303) {
        return None;
    }
    if cs_len == 0
        || !cs_len.is_multiple_of(3)
        || !matches!(sid_len, 0 | 16)
        || !(16..=32).contains(&chal_len)
    {
        return None;
    }
    if length != 9 + usize::from(cs_len) + usize::from(sid_len) + usize::from(chal_len) {
        return None;
    }
    let mut meta = Meta::new();
    meta.insert("tls_version".into(), Value::from(version_name(version)));
    meta.insert("tls_sslv2_hello".into(), Value::Bool(true));
    Some(ProbeResult::hit(meta))
}

/// What the record walk saw.
struct Records<'a> {
    /// (content type, length) of each record header read.
    list: Vec<(u8, usize)>,
    /// The payload of the leading handshake records, joined (borrowed when there is one).
    handshake: Cow<'a, [u8]>,
    /// The last record is cut by the end of the data.
    truncated: bool,
    /// The first header is valid.
    valid: bool,
}

fn walk_records(data: &[u8]) -> Records<'_> {
    let mut rec = Records {
        list: Vec::new(),
        handshake: Cow::Borrowed(&[]),
        truncated: false,
        valid: true,
    };
    let mut collecting = true;
    let mut off = 0;
    let n = data.len();
    while off < n && rec.list.len() < MAX_RECORDS {
        let header = &data[off..(off + 5).min(n)];
        if !valid_record_header(header) {
            rec.valid = !rec.list.is_empty();
            return rec;
        }
        if header.len() < 5 {
            rec.truncated = true; // a header cut by the end of data
            return rec;
        }
        let (ctype, length) = (
            header[0],
            usize::from(u16::from_be_bytes([header[3], header[4]])),
        );
        rec.list.push((ctype, length));
        if ctype == CT_HANDSHAKE && collecting {
            let payload = &data[off + 5..(off + 5 + length).min(n)];
            match &mut rec.handshake {
                Cow::Borrowed([]) => rec.handshake = Cow::Borrowed(payload),
                hs => hs.to_mut().extend_from_slice(payload),
            }
        } else {
            collecting = false;
        }
        off += 5 + length;
        if off > n {
            rec.truncated = true;
            return rec;
        }
    }
    rec
}

fn client_side(handshake: &[u8], truncated: bool, size: usize) -> ProbeResult {
    let Some(length) = be24(handshake, 1) else {
        return if truncated {
            ProbeResult::more()
        } else {
            ProbeResult::no()
        };
    };
    if handshake[0] != HS_CLIENT_HELLO || length < 2 + 32 + 1 + 2 + 2 + 1 {
        return ProbeResult::no();
    }
    let body = &handshake[4..(4 + length).min(handshake.len())];
    if body.len() < 2 {
        return if truncated {
            ProbeResult::more()
        } else {
            ProbeResult::no()
        };
    }
    let Some(ch) = parse_client_hello(body, false, Some(length)) else {
        return ProbeResult::no();
    };
    if !ch.complete && body.len() >= length {
        return ProbeResult::no(); // all bytes present yet the structure does not close
    }
    if !ch.complete && truncated && size < TRUNCATED_MATCH_AT {
        return ProbeResult::more();
    }
    if ch.ciphers.is_empty() && !ch.complete {
        return if truncated {
            ProbeResult::more()
        } else {
            ProbeResult::no()
        };
    }
    let mut meta = Meta::new();
    client_hello_meta(&ch, 't', &mut meta);
    // A whole ClientHello (complete implies every byte is present): its facts never change.
    ProbeResult::hit_done(meta, ch.complete)
}

/// `cleartext_over`: a record other than handshake followed, so no certificate can come later.
fn server_side(
    handshake: &[u8],
    truncated: bool,
    size: usize,
    mut cleartext_over: bool,
) -> ProbeResult {
    let Some(length) = be24(handshake, 1) else {
        return if truncated {
            ProbeResult::more()
        } else {
            ProbeResult::no()
        };
    };
    if handshake[0] != HS_SERVER_HELLO || !(38..=65535).contains(&length) {
        return ProbeResult::no();
    }
    let Some(body) = handshake.get(4..4 + length) else {
        return if truncated && size < TRUNCATED_MATCH_AT {
            ProbeResult::more()
        } else {
            ProbeResult::no()
        };
    };
    let Some(sh) = parse_server_hello(body, false) else {
        return ProbeResult::no();
    };
    let mut meta = server_hello_meta(&sh);
    if sh.version() != 0x0304 {
        let mut off = 4 + length;
        for _ in 0..MAX_MESSAGES {
            let (Some(&mtype), Some(mlen)) = (handshake.get(off), be24(handshake, off + 1)) else {
                break;
            };
            if mtype == HS_CERTIFICATE {
                let body = &handshake[off + 4..(off + 4 + mlen).min(handshake.len())];
                if let Some(clen) = be24(body, 3) {
                    if let Some(der) = body.get(6..6 + clen) {
                        certificate_meta(der, &mut meta);
                        cleartext_over = true;
                    }
                }
                break;
            }
            off += 4 + mlen;
        }
    }
    // TLS 1.3 encrypts everything after the ServerHello: nothing more to read in clear.
    let done = sh.version() == 0x0304 || cleartext_over;
    ProbeResult::hit_done(meta, done)
}

fn midstream(rec: &Records, data: &[u8]) -> ProbeResult {
    let Some(&(first_type, first_len)) = rec.list.first() else {
        return ProbeResult::more();
    };
    let complete = rec.list.len() - usize::from(rec.truncated);
    let mut meta = Meta::new();
    meta.insert("tls_midstream".into(), Value::Bool(true));
    // An application-data record runs to 2^14 + 256 bytes (RFC 8446 5.2): once the depth has
    // cut the stream inside one, its header (the walk checked type, version and length) and
    // what came before are all the evidence there will be.
    if first_type == CT_APPDATA && rec.truncated && data.len() >= TRUNCATED_MATCH_AT {
        return ProbeResult::hit(meta);
    }
    if complete == 0 {
        return ProbeResult::more();
    }
    if first_type == CT_ALERT {
        let (Some(&level), Some(&desc)) = (data.get(5), data.get(6)) else {
            return ProbeResult::no();
        };
        if first_len != 2 || !matches!(level, 1 | 2) {
            return ProbeResult::no();
        }
        meta.insert("tls_alert".into(), Value::from(desc));
    } else if first_type == CT_CCS && (first_len != 1 || data.get(5) != Some(&1)) {
        return ProbeResult::no();
    }
    if first_type == CT_APPDATA && complete < 2 && (rec.truncated || 5 + first_len != data.len()) {
        return if rec.truncated {
            ProbeResult::more()
        } else {
            ProbeResult::no()
        };
    }
    ProbeResult::hit(meta)
}

/// Classify the first bytes of one TLS-over-TCP direction (see the module docs).
pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    let data = &data[..data.len().min(MAX_INPUT)];
    let Some(&first) = data.first() else {
        return ProbeResult::more();
    };
    if from_client && first & 0x80 != 0 {
        if let Some(v2) = sslv2_hello(data) {
            return v2;
        }
    }
    let rec = walk_records(data);
    if !rec.valid {
        return ProbeResult::no();
    }
    let Some(&(first_type, _)) = rec.list.first() else {
        return ProbeResult::more(); // a valid header prefix (< 5 bytes)
    };
    if first_type != CT_HANDSHAKE {
        return midstream(&rec, data);
    }
    if from_client {
        return client_side(&rec.handshake, rec.truncated, data.len());
    }
    let cleartext_over = rec.list.iter().any(|(t, _)| *t != CT_HANDSHAKE);
    server_side(&rec.handshake, rec.truncated, data.len(), cleartext_over)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("tls");
    }

    /// A TLS 1.3 ClientHello built field by field (RFC 8446 §4.1.2).
    fn client_hello() -> Vec<u8> {
        client_hello_padded(0)
    }

    /// The same with a padding extension of `pad` bytes (RFC 7685) at the end.
    fn client_hello_padded(pad: usize) -> Vec<u8> {
        let mut exts = Vec::new();
        let sni = b"\x00\x0e\x00\x00\x0bexample.com";
        exts.extend([0x00, 0x00, 0x00, sni.len() as u8]);
        exts.extend_from_slice(sni);
        exts.extend([0x00, 0x10, 0x00, 0x05, 0x00, 0x03, 0x02, b'h', b'2']);
        exts.extend([0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1d]);
        exts.extend([0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03]);
        exts.extend([0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04]);
        if pad > 0 {
            exts.extend([0x00, 0x15, (pad >> 8) as u8, pad as u8]);
            exts.extend(vec![0; pad]);
        }
        let mut body = vec![0x03, 0x03];
        body.extend([7u8; 32]);
        body.push(0); // session id
        body.extend([0x00, 0x04, 0x13, 0x01, 0x0a, 0x0a]); // a cipher and a GREASE value
        body.extend([0x01, 0x00]);
        body.extend([(exts.len() >> 8) as u8, exts.len() as u8]);
        body.extend(exts);
        let mut hs = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
        hs.extend(body);
        let mut rec = vec![22, 3, 1, (hs.len() >> 8) as u8, hs.len() as u8];
        rec.extend(hs);
        rec
    }

    #[test]
    fn client_hello_fingerprints() {
        let r = probe(&client_hello(), true);
        assert_eq!(r.status, Status::Match);
        assert!(r.done);
        assert_eq!(r.meta["tls_version"], "1.3");
        assert_eq!(r.meta["sni"], "example.com");
        assert_eq!(r.meta["alpn"], serde_json::json!(["h2"]));
        assert_eq!(r.meta["ja3_string"], "771,4865,0-16-10-13-43,29,");
        assert!(r.meta["ja4"].as_str().unwrap().starts_with("t13d0105h2_"));
        // Cut short: consistent so far, so more is needed.
        assert_eq!(probe(&client_hello()[..60], true).status, Status::More);
    }

    #[test]
    fn alert_midstream() {
        let r = probe(&[21, 3, 3, 0, 2, 2, 40], false);
        assert_eq!(r.meta["tls_midstream"], true);
        assert_eq!(r.meta["tls_alert"], 40);
        assert_eq!(probe(&[21, 3, 3, 0, 2, 3, 40], false).status, Status::No);
    }

    /// A stream picked up inside a 16 KiB application-data record (RFC 8446 5.2: up to
    /// 2^14 + 256 bytes): its header and as much of it as the mid-stream depth keeps.
    fn appdata_cut(held: usize) -> Vec<u8> {
        let mut data = vec![CT_APPDATA, 3, 3, 0x40, 0x00];
        data.extend((0..held - 5).map(|i| (i * 131 % 251) as u8));
        data
    }

    #[test]
    fn an_appdata_record_cut_by_the_midstream_depth_matches() {
        let at = crate::flow::reassembly::MIDSTREAM_DEPTH;
        let r = probe(&appdata_cut(at), false);
        assert_eq!(r.status, Status::Match);
        assert_eq!(r.meta["tls_midstream"], true);
        // Shorter, more of the record may still come.
        assert_eq!(probe(&appdata_cut(at - 1), false).status, Status::More);
        // A length past what a record may carry is no TLS, however much is held.
        let mut long = appdata_cut(at);
        long[3] = 0x50;
        assert_eq!(probe(&long, false).status, Status::No);
        // A whole record, then one the depth cut.
        let mut two = vec![CT_APPDATA, 3, 3, 0, 4, 1, 2, 3, 4];
        two.extend(appdata_cut(at));
        assert_eq!(probe(&two, false).status, Status::Match);
    }

    #[test]
    fn a_hello_cut_by_the_midstream_depth_matches_partially() {
        let at = crate::flow::reassembly::MIDSTREAM_DEPTH;
        let hello = client_hello_padded(3000);
        assert_eq!(probe(&hello[..at - 1], true).status, Status::More);
        let r = probe(&hello[..at], true);
        assert_eq!(r.status, Status::Match);
        assert!(!r.done, "more of a cut hello may still be read");
        assert_eq!(r.meta["sni"], "example.com");
        assert!(probe(&hello, true).done);
    }

    #[test]
    fn never_panics_on_prefixes_and_flips() {
        let hello = client_hello();
        for cut in 0..hello.len() {
            for from_client in [true, false] {
                let _ = probe(&hello[..cut], from_client);
                let mut flipped = hello.clone();
                flipped[cut] ^= 0xff;
                let _ = probe(&flipped, from_client);
            }
        }
    }
}
