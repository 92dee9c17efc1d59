//! TLS hello parsing shared by the tls, dtls and quic probes: ClientHello (with JA3 and JA4),
//! ServerHello (with JA3S), version names, and the text cleaning every packet string goes
//! through. Lists are kept as slices of the hello (no copies): a hello is parsed per flow.
#![forbid(unsafe_code)]

use crate::meta::{Meta, Value};
use crate::text::{clean_owned, clean_text, hex, hex_u16, push_decimal, push_hex, MAX_TEXT};
use md5::{Digest, Md5};
use sha2::Sha256;

/// TLSCiphertext upper bound (RFC 8446 §5.2).
pub const MAX_RECORD: usize = 16384 + 2048;
/// ALPN values kept in meta.
pub const MAX_LIST: usize = 16;
/// Ciphers / extensions / groups kept per hello.
pub const MAX_VALUES: usize = 1024;
const JA3_TEXT_LIMIT: usize = 4096;

pub const HS_CLIENT_HELLO: u8 = 1;
pub const HS_SERVER_HELLO: u8 = 2;

const EXT_SNI: u16 = 0x0000;
const EXT_GROUPS: u16 = 0x000A;
const EXT_POINT_FORMATS: u16 = 0x000B;
const EXT_SIG_ALGS: u16 = 0x000D;
const EXT_ALPN: u16 = 0x0010;
const EXT_SUPPORTED_VERSIONS: u16 = 0x002B;

/// RFC 8701 GREASE code points: 0x0a0a, 0x1a1a, ..., 0xfafa.
pub fn is_grease(value: u16) -> bool {
    (value & 0x0F0F) == 0x0A0A && (value >> 8) == (value & 0xFF)
}

pub fn version_name(version: u16) -> String {
    match version {
        0x0002 => "ssl2".into(),
        0x0300 => "ssl3".into(),
        0x0301 => "1.0".into(),
        0x0302 => "1.1".into(),
        0x0303 => "1.2".into(),
        0x0304 => "1.3".into(),
        0xFEFF => "dtls1.0".into(),
        0xFEFD => "dtls1.2".into(),
        0xFEFC => "dtls1.3".into(),
        v => hex_u16(v),
    }
}

fn ja4_version(version: u16) -> &'static str {
    match version {
        0x0002 => "s2",
        0x0300 => "s3",
        0x0301 => "10",
        0x0302 => "11",
        0x0303 => "12",
        0x0304 => "13",
        0xFEFF => "d1",
        0xFEFD => "d2",
        0xFEFC => "d3",
        _ => "00",
    }
}

/// DTLS versions count down: a smaller number is a newer version.
fn version_rank(version: u16) -> Option<u8> {
    Some(match version {
        0x0002 => 1,
        0x0300 => 2,
        0x0301 | 0xFEFF => 3,
        0x0302 => 4,
        0x0303 | 0xFEFD => 5,
        0x0304 | 0xFEFC => 6,
        _ => return None,
    })
}

fn cipher_name(cipher: u16) -> Option<&'static str> {
    Some(match cipher {
        0x1301 => "TLS_AES_128_GCM_SHA256",
        0x1302 => "TLS_AES_256_GCM_SHA384",
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
        0x1304 => "TLS_AES_128_CCM_SHA256",
        0x1305 => "TLS_AES_128_CCM_8_SHA256",
        0xC02B => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        0xC02C => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        0xC02F => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        0xC030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        0xCCA8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xCCA9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        0xC009 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        0xC00A => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        0xC013 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        0xC014 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        0xC023 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        0xC027 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        0xC024 => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        0xC028 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        0x009C => "TLS_RSA_WITH_AES_128_GCM_SHA256",
        0x009D => "TLS_RSA_WITH_AES_256_GCM_SHA384",
        0x009E => "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        0x009F => "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        0x002F => "TLS_RSA_WITH_AES_128_CBC_SHA",
        0x0035 => "TLS_RSA_WITH_AES_256_CBC_SHA",
        0x003C => "TLS_RSA_WITH_AES_128_CBC_SHA256",
        0x003D => "TLS_RSA_WITH_AES_256_CBC_SHA256",
        0x000A => "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        0x0004 => "TLS_RSA_WITH_RC4_128_MD5",
        0x0005 => "TLS_RSA_WITH_RC4_128_SHA",
        _ => return None,
    })
}

pub(crate) fn be16(buf: &[u8], off: usize) -> Option<u16> {
    let b = buf.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

pub(crate) fn be24(buf: &[u8], off: usize) -> Option<usize> {
    let b = buf.get(off..off.checked_add(3)?)?;
    Some((usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
}

/// A list of big-endian u16 values, borrowed from the hello.
#[derive(Clone, Copy, Default, Debug)]
pub struct U16s<'a>(&'a [u8]);

impl<'a> U16s<'a> {
    /// The values in `buf[start..end]`, cut to the buffer and to `MAX_VALUES`.
    fn within(buf: &'a [u8], start: usize, end: usize) -> Self {
        let end = end.min(buf.len()).min(start.saturating_add(2 * MAX_VALUES));
        let count = end.saturating_sub(start) / 2;
        Self(buf.get(start..start + 2 * count).unwrap_or_default())
    }
    pub fn iter(self) -> impl Iterator<Item = u16> + 'a {
        self.0
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
    }
    pub fn sans_grease(self) -> impl Iterator<Item = u16> + 'a {
        self.iter().filter(|v| !is_grease(*v))
    }
    pub fn is_empty(self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug, Default)]
pub struct ClientHello<'a> {
    pub legacy_version: u16,
    pub ciphers: U16s<'a>,
    pub extensions: Vec<u16>,
    pub sni: Option<&'a [u8]>,
    /// The first `MAX_LIST` ALPN protocols (only those are shown or fingerprinted).
    pub alpn: Vec<&'a [u8]>,
    /// ALPN protocols read so far, bounded by `MAX_VALUES` as in the oracle.
    alpn_count: usize,
    pub supported_versions: U16s<'a>,
    pub groups: U16s<'a>,
    pub point_formats: &'a [u8],
    pub sig_algs: U16s<'a>,
    /// Every field up to the end of the extensions was present.
    pub complete: bool,
}

impl ClientHello<'_> {
    /// Highest version offered: from supported_versions when present (GREASE ignored).
    pub fn best_version(&self) -> u16 {
        let mut best: Option<(u8, u16)> = None;
        let mut highest: Option<u16> = None;
        for v in self.supported_versions.sans_grease() {
            match version_rank(v) {
                None => highest = Some(highest.map_or(v, |h| h.max(v))),
                Some(rank) => {
                    if best.is_none_or(|(r, _)| rank > r) {
                        best = Some((rank, v));
                    }
                }
            }
        }
        best.map(|(_, v)| v)
            .or(highest)
            .unwrap_or(self.legacy_version)
    }
}

/// Fill `ch` from one extension body; a malformed body is ignored (the type still counts).
fn parse_extension<'a>(ch: &mut ClientHello<'a>, etype: u16, ext: &'a [u8]) {
    let n = ext.len();
    let declared_end = |ext: &[u8]| be16(ext, 0).map(|l| (2 + usize::from(l)).min(n));
    match etype {
        EXT_SNI => {
            let Some(end) = declared_end(ext) else { return };
            let mut off = 2;
            while off + 3 <= end {
                let ntype = ext[off];
                let nlen = usize::from(be16(ext, off + 1).unwrap_or(0));
                off += 3;
                if ntype == 0 && ch.sni.is_none() {
                    ch.sni = ext.get(off..(off + nlen).min(end));
                }
                off += nlen;
            }
        }
        EXT_ALPN => {
            let Some(end) = declared_end(ext) else { return };
            let mut off = 2;
            while off < end && ch.alpn_count < MAX_VALUES {
                let plen = usize::from(ext[off]);
                off += 1;
                if off + plen > end {
                    break;
                }
                if ch.alpn.len() < MAX_LIST {
                    ch.alpn.push(&ext[off..off + plen]);
                }
                ch.alpn_count += 1;
                off += plen;
            }
        }
        EXT_SUPPORTED_VERSIONS => {
            if let Some(&len) = ext.first() {
                ch.supported_versions = U16s::within(ext, 1, 1 + usize::from(len));
            }
        }
        EXT_GROUPS => {
            if let Some(len) = be16(ext, 0) {
                ch.groups = U16s::within(ext, 2, 2 + usize::from(len));
            }
        }
        EXT_POINT_FORMATS => {
            if let Some(&len) = ext.first() {
                let end = (1 + usize::from(len).min(MAX_VALUES)).min(n);
                ch.point_formats = ext.get(1..end).unwrap_or_default();
            }
        }
        EXT_SIG_ALGS => {
            if let Some(len) = be16(ext, 0) {
                ch.sig_algs = U16s::within(ext, 2, 2 + usize::from(len));
            }
        }
        _ => {}
    }
}

/// Parse a ClientHello handshake body (after the 4-byte, or DTLS 12-byte, message header).
///
/// `total` is the body length the handshake header announced, when `body` may be a prefix of it.
/// None when the bytes present contradict the structure. A body cut short gives what could be
/// read with `complete == false` (callers decide whether that is enough).
pub fn parse_client_hello(
    body: &[u8],
    dtls: bool,
    total: Option<usize>,
) -> Option<ClientHello<'_>> {
    let mut ch = parse_client_hello_body(body, dtls)?;
    if total.is_some_and(|t| body.len() < t) {
        ch.complete = false;
    }
    Some(ch)
}

fn parse_client_hello_body(body: &[u8], dtls: bool) -> Option<ClientHello<'_>> {
    let n = body.len();
    let version = be16(body, 0)?;
    if dtls {
        if !matches!(version, 0xFEFF | 0xFEFD | 0xFEFC | 0x0100) {
            return None;
        }
    } else if (version >> 8) != 3 || (version & 0xFF) > 4 {
        return None;
    }
    let mut ch = ClientHello {
        legacy_version: version,
        ..Default::default()
    };
    let mut off = 2 + 32;
    let Some(&sid_len) = body.get(off) else {
        return Some(ch);
    };
    if sid_len > 32 {
        return None;
    }
    off += 1 + usize::from(sid_len);
    if dtls {
        let Some(&cookie_len) = body.get(off) else {
            return Some(ch);
        };
        off += 1 + usize::from(cookie_len);
    }
    let Some(cs_len) = be16(body, off) else {
        return Some(ch);
    };
    let cs_len = usize::from(cs_len);
    if cs_len == 0 || !cs_len.is_multiple_of(2) {
        return None;
    }
    off += 2;
    ch.ciphers = U16s::within(body, off, off + cs_len);
    off += cs_len;
    let Some(&comp_len) = body.get(off) else {
        return Some(ch);
    };
    if comp_len == 0 {
        return None;
    }
    off += 1 + usize::from(comp_len);
    if n < off {
        return Some(ch);
    }
    if n == off {
        ch.complete = true; // no extensions at all (SSLv3 / old TLS)
        return Some(ch);
    }
    let Some(ext_total) = be16(body, off) else {
        return Some(ch);
    };
    off += 2;
    let ext_end = off + usize::from(ext_total);
    let stop = ext_end.min(n);
    while off + 4 <= stop && ch.extensions.len() < MAX_VALUES {
        let etype = be16(body, off)?;
        let elen = usize::from(be16(body, off + 2)?);
        off += 4;
        let end = off + elen;
        if end > ext_end {
            return None; // an extension overruns the extensions block
        }
        ch.extensions.push(etype);
        let Some(ext) = body.get(off..end) else {
            return Some(ch);
        }; // cut inside it
        if matches!(
            etype,
            EXT_SNI
                | EXT_GROUPS
                | EXT_POINT_FORMATS
                | EXT_SIG_ALGS
                | EXT_ALPN
                | EXT_SUPPORTED_VERSIONS
        ) {
            parse_extension(&mut ch, etype, ext);
        }
        off = end;
    }
    ch.complete = off == ext_end && n >= ext_end;
    Some(ch)
}

fn join_decimal(out: &mut String, values: impl Iterator<Item = u16>) {
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push('-');
        }
        push_decimal(out, u64::from(v));
    }
}

/// (ja3 md5 hex, ja3 string) per salesforce/ja3: GREASE removed from every list.
pub fn ja3_of(ch: &ClientHello) -> (String, String) {
    let mut text = String::with_capacity(256);
    push_decimal(&mut text, u64::from(ch.legacy_version));
    text.push(',');
    join_decimal(&mut text, ch.ciphers.sans_grease());
    text.push(',');
    join_decimal(
        &mut text,
        ch.extensions.iter().copied().filter(|e| !is_grease(*e)),
    );
    text.push(',');
    join_decimal(&mut text, ch.groups.sans_grease());
    text.push(',');
    join_decimal(&mut text, ch.point_formats.iter().map(|&p| u16::from(p)));
    (hex(&Md5::digest(text.as_bytes())), text)
}

/// JA4's 12-digit hash of a list (the first 12 hex digits of its SHA-256; zeros for none)
/// appended to `out`.
fn push_hash12(out: &mut String, text: &str) {
    if text.is_empty() {
        out.push_str("000000000000");
    } else {
        push_hex(out, &Sha256::digest(text.as_bytes())[..6]);
    }
}

fn ja4_alpn(ch: &ClientHello) -> [char; 2] {
    let Some(first) = ch.alpn.first().filter(|f| !f.is_empty()) else {
        return ['0', '0'];
    };
    let (a, z) = (first[0], first[first.len() - 1]);
    if a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric() {
        return [char::from(a), char::from(z)];
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    [
        char::from(HEX[usize::from(a >> 4)]),
        char::from(HEX[usize::from(z & 0x0F)]),
    ]
}

fn join_hex(out: &mut String, values: &[u16]) {
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_hex(out, &v.to_be_bytes());
    }
}

/// (ja4_a, ja4_b raw list, ja4_c raw list) per FoxIO's JA4 definition.
pub fn ja4_parts(ch: &ClientHello, kind: char) -> (String, String, String) {
    let mut ciphers: Vec<u16> = ch.ciphers.sans_grease().collect();
    let mut exts: Vec<u16> = ch
        .extensions
        .iter()
        .copied()
        .filter(|e| !is_grease(*e))
        .collect();
    let sni = if exts.contains(&EXT_SNI) { 'd' } else { 'i' };
    let [first, last] = ja4_alpn(ch);
    // Two digits a count: at most 99 (JA4 caps them), so no formatter is needed.
    let two = |n: usize| {
        let n = n.min(99) as u8;
        [char::from(b'0' + n / 10), char::from(b'0' + n % 10)]
    };
    let mut a = String::with_capacity(10);
    a.push(kind);
    a.push_str(ja4_version(ch.best_version()));
    a.push(sni);
    a.extend(two(ciphers.len()));
    a.extend(two(exts.len()));
    a.push(first);
    a.push(last);
    ciphers.sort_unstable();
    let mut b = String::with_capacity(ciphers.len() * 5);
    join_hex(&mut b, &ciphers);
    exts.retain(|e| *e != EXT_SNI && *e != EXT_ALPN);
    exts.sort_unstable();
    let mut c = String::with_capacity(exts.len() * 5 + ch.sig_algs.0.len() * 3);
    join_hex(&mut c, &exts);
    let sigs: Vec<u16> = ch.sig_algs.sans_grease().collect();
    if !c.is_empty() && !sigs.is_empty() {
        c.push('_');
        join_hex(&mut c, &sigs);
    }
    (a, b, c)
}

/// JA4 fingerprint; kind is 't' (TLS over TCP), 'q' (QUIC) or 'd' (DTLS).
pub fn ja4_of(ch: &ClientHello, kind: char) -> String {
    let (mut out, b, c) = ja4_parts(ch, kind);
    out.reserve(26);
    out.push('_');
    push_hash12(&mut out, &b);
    out.push('_');
    push_hash12(&mut out, &c);
    out
}

/// DESIGN.md meta keys for a ClientHello. Fingerprints only when the hello is complete.
pub fn client_hello_meta(ch: &ClientHello, kind: char, meta: &mut Meta) {
    meta.insert(
        "tls_version".into(),
        Value::from(version_name(ch.best_version())),
    );
    if let Some(sni) = ch.sni {
        meta.insert("sni".into(), Value::from(clean_text(sni, MAX_TEXT)));
    }
    if !ch.alpn.is_empty() {
        let list = ch
            .alpn
            .iter()
            .map(|p| Value::from(clean_text(p, 64)))
            .collect();
        meta.insert("alpn".into(), Value::Array(list));
    }
    if ch.complete {
        let (ja3, ja3_text) = ja3_of(ch);
        meta.insert("ja3".into(), Value::from(ja3));
        meta.insert(
            "ja3_string".into(),
            Value::from(clean_owned(ja3_text, JA3_TEXT_LIMIT)),
        );
        meta.insert("ja4".into(), Value::from(ja4_of(ch, kind)));
    } else {
        meta.insert("tls_truncated".into(), Value::Bool(true));
    }
}

#[derive(Debug)]
pub struct ServerHello<'a> {
    pub legacy_version: u16,
    pub cipher: u16,
    pub extensions: Vec<u16>,
    pub selected_version: Option<u16>,
    pub alpn: Option<&'a [u8]>,
}

impl ServerHello<'_> {
    pub fn version(&self) -> u16 {
        self.selected_version.unwrap_or(self.legacy_version)
    }
}

/// Parse a complete ServerHello body; None when malformed or too short for the cipher.
pub fn parse_server_hello(body: &[u8], dtls: bool) -> Option<ServerHello<'_>> {
    let n = body.len();
    if n < 2 + 32 + 1 {
        return None;
    }
    let version = be16(body, 0)?;
    if dtls {
        if !matches!(version, 0xFEFF | 0xFEFD | 0xFEFC) {
            return None;
        }
    } else if (version >> 8) != 3 || (version & 0xFF) > 4 {
        return None;
    }
    let sid_len = *body.get(34)?;
    if sid_len > 32 {
        return None;
    }
    let mut off = 35 + usize::from(sid_len);
    if n < off + 3 {
        return None;
    }
    let cipher = be16(body, off)?;
    let mut sh = ServerHello {
        legacy_version: version,
        cipher,
        extensions: Vec::new(),
        selected_version: None,
        alpn: None,
    };
    off += 3; // cipher + compression method
    let Some(ext_total) = be16(body, off) else {
        return Some(sh);
    };
    let ext_end = (off + 2 + usize::from(ext_total)).min(n);
    off += 2;
    while off + 4 <= ext_end && sh.extensions.len() < MAX_VALUES {
        let etype = be16(body, off)?;
        let elen = usize::from(be16(body, off + 2)?);
        off += 4;
        let ext = body.get(off..(off + elen).min(ext_end)).unwrap_or_default();
        sh.extensions.push(etype);
        if etype == EXT_SUPPORTED_VERSIONS && ext.len() >= 2 {
            sh.selected_version = be16(ext, 0);
        } else if etype == EXT_ALPN && ext.len() >= 3 {
            let end = (3 + usize::from(ext[2])).min(ext.len());
            sh.alpn = ext.get(3..end);
        }
        off += elen;
    }
    Some(sh)
}

/// What a ServerHello picks from the ClientHello's offer: its facts under the client's names
/// become `tls_version_server` and `alpn_server` (`Probe::answers`).
pub const HELLO_ANSWERS: &[super::Answer] = answers!["tls_version", "alpn"];

pub fn server_hello_meta(sh: &ServerHello) -> Meta {
    let mut text = String::with_capacity(64);
    push_decimal(&mut text, u64::from(sh.legacy_version));
    text.push(',');
    push_decimal(&mut text, u64::from(sh.cipher));
    text.push(',');
    join_decimal(&mut text, sh.extensions.iter().copied());
    let mut meta = Meta::new();
    meta.insert(
        "tls_version".into(),
        Value::from(version_name(sh.version())),
    );
    meta.insert("cipher".into(), Value::from(hex_u16(sh.cipher)));
    meta.insert(
        "ja3s".into(),
        Value::from(hex(&Md5::digest(text.as_bytes()))),
    );
    meta.insert(
        "ja3s_string".into(),
        Value::from(clean_owned(text, JA3_TEXT_LIMIT)),
    );
    if let Some(name) = cipher_name(sh.cipher) {
        meta.insert("cipher_name".into(), Value::from(name));
    }
    if let Some(alpn) = sh.alpn.filter(|a| !a.is_empty()) {
        meta.insert(
            "alpn".into(),
            Value::Array(vec![Value::from(clean_text(alpn, 64))]),
        );
    }
    meta
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ja4_hash12_is_the_sha256_head_or_zeros() {
        let mut out = String::from("x_");
        push_hash12(&mut out, "");
        push_hash12(&mut out, "002f,0035");
        let full = hex(&Sha256::digest(b"002f,0035"));
        assert_eq!(out, format!("x_000000000000{}", &full[..12]));
    }

    #[test]
    fn ja4_alpn_takes_the_first_values_ends_or_their_hex() {
        let hello = |alpn: Vec<&'static [u8]>| {
            ja4_alpn(&ClientHello {
                alpn,
                ..Default::default()
            })
        };
        assert_eq!(hello(vec![]), ['0', '0']);
        assert_eq!(hello(vec![b""]), ['0', '0']);
        assert_eq!(hello(vec![b"h2", b"http/1.1"]), ['h', '2']);
        assert_eq!(hello(vec![b"http/1.1"]), ['h', '1']);
        assert_eq!(hello(vec![b"\xab-\x3c"]), ['a', 'c']);
    }

    /// The JA4 `a` part: counts of 0, one digit, two digits and past 99 (capped), SNI or not,
    /// against the text the formatter makes of the same parts.
    #[test]
    fn ja4_a_counts_are_two_digits_capped_at_99() {
        for (n_ciphers, n_exts) in [(0usize, 0usize), (5, 9), (10, 42), (120, 150)] {
            let ciphers: Vec<u8> = (0..n_ciphers as u16)
                .flat_map(|c| (0x1301 + c * 0x101).to_be_bytes())
                .collect();
            for sni in [false, true] {
                // Extensions past 0x0000 (SNI) and 0x0010 (ALPN), then SNI itself when asked.
                let mut extensions: Vec<u16> = (0..n_exts as u16).map(|e| 0x0100 + e).collect();
                if sni {
                    extensions.push(EXT_SNI);
                }
                let ch = ClientHello {
                    legacy_version: 0x0303,
                    ciphers: U16s(&ciphers),
                    extensions,
                    alpn: vec![b"h2"],
                    ..Default::default()
                };
                let (a, _, _) = ja4_parts(&ch, 't');
                let exts = n_exts + usize::from(sni);
                let want = format!(
                    "t{}{}{:02}{:02}h2",
                    ja4_version(ch.best_version()),
                    if sni { 'd' } else { 'i' },
                    n_ciphers.min(99),
                    exts.min(99),
                );
                assert_eq!(a, want);
            }
        }
    }

    #[test]
    fn grease_values() {
        assert!(is_grease(0x0a0a) && is_grease(0xfafa) && !is_grease(0x0a1a) && !is_grease(0x1301));
    }

    #[test]
    fn best_version_prefers_known_versions() {
        let sv = [0x7f, 0x17, 0x03, 0x03, 0x0a, 0x0a];
        let ch = ClientHello {
            legacy_version: 0x0303,
            supported_versions: U16s(&sv),
            ..Default::default()
        };
        assert_eq!(ch.best_version(), 0x0303);
        let dt = [0xfe, 0xfd, 0xfe, 0xfc];
        let ch = ClientHello {
            legacy_version: 0xfefd,
            supported_versions: U16s(&dt),
            ..Default::default()
        };
        assert_eq!(ch.best_version(), 0xfefc);
    }
}
