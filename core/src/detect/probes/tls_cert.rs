//! Subject and issuer of a DER X.509 certificate sent in clear (TLS <= 1.2).
//!
//! The oracle loads the certificate with `cryptography` (strict DER, the whole structure) and
//! shows the CN, else the RFC 4514 form of the name. This reader walks the same structure with
//! the same strictness where it matters for names (minimal DER lengths, the certificate's fields
//! in order, the string types a name may hold) and gives up, like the oracle, on anything else.
#![forbid(unsafe_code)]

use crate::meta::{Meta, Value};
use crate::text::{clean_text, MAX_TEXT};
use std::fmt::Write;

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const UNIVERSAL_STRING: u8 = 0x1C;
const BMP_STRING: u8 = 0x1E;
const PRINTABLE_STRING: u8 = 0x13;
/// rust-asn1's bound on an OBJECT IDENTIFIER's encoding.
const MAX_OID_LEN: usize = 63;
/// Attributes read per name: a name is a handful; a hostile one is cut off (and refused).
const MAX_ATTRIBUTES: usize = 256;

const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_UNIQUE_ID: &[u8] = &[0x55, 0x04, 0x2D];

/// A DER reader over one constructed value's contents.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(rest: &'a [u8]) -> Self {
        Self { rest }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next element: (identifier octet, contents). Minimal lengths only (DER).
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let tag = *self.rest.first()?;
        if tag & 0x1F == 0x1F {
            return None; // long-form tags appear in no field read here
        }
        let first = *self.rest.get(1)?;
        let (len, head) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            let count = usize::from(first & 0x7F);
            if count == 0 || count > 4 {
                return None; // indefinite, or longer than any input
            }
            let bytes = self.rest.get(2..2 + count)?;
            if bytes[0] == 0 {
                return None;
            }
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            if len < 0x80 {
                return None;
            }
            (len, 2 + count)
        };
        let end = head.checked_add(len)?;
        let contents = self.rest.get(head..end)?;
        self.rest = self.rest.get(end..)?;
        Some((tag, contents))
    }

    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.next()? {
            (t, contents) if t == tag => Some(contents),
            _ => None,
        }
    }
}

fn valid_integer(contents: &[u8]) -> bool {
    match contents {
        [] => false,
        [0x00, next, ..] => next & 0x80 != 0,
        [0xFF, next, ..] => next & 0x80 == 0,
        _ => true,
    }
}

fn valid_bit_string(contents: &[u8]) -> bool {
    match contents {
        [unused] => *unused == 0,
        [unused, .., last] => *unused < 8 && last & ((1u8 << unused) - 1) == 0,
        [] => false,
    }
}

fn valid_oid(contents: &[u8]) -> bool {
    if contents.is_empty() || contents.len() > MAX_OID_LEN {
        return false;
    }
    oid_arcs(contents).is_some()
}

/// The base-128 numbers of an OID's contents (minimal encodings, each fits in a u128).
fn oid_arcs(contents: &[u8]) -> Option<Vec<u128>> {
    let mut out = Vec::with_capacity(contents.len());
    let mut value: u128 = 0;
    let mut start = true;
    for &b in contents {
        if start && b == 0x80 {
            return None;
        }
        if value > (u128::MAX >> 7) {
            return None;
        }
        value = (value << 7) | u128::from(b & 0x7F);
        start = b & 0x80 == 0;
        if start {
            out.push(value);
            value = 0;
        }
    }
    if !start {
        return None;
    }
    Some(out)
}

fn dotted(contents: &[u8]) -> String {
    let arcs = oid_arcs(contents).unwrap_or_default();
    let mut out = String::new();
    for (i, arc) in arcs.iter().enumerate() {
        if i == 0 {
            let (a, b) = if *arc < 80 {
                (arc / 40, arc % 40)
            } else {
                (2, arc - 80)
            };
            let _ = write!(out, "{a}.{b}");
        } else {
            let _ = write!(out, ".{arc}");
        }
    }
    out
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.len() > 9 {
        return s.iter().all(u8::is_ascii_digit).then_some(0);
    }
    s.iter().try_fold(0u32, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

fn valid_date_time(month: u32, day: u32, hour: u32, minute: u32, second: u32) -> bool {
    (1..=12).contains(&month) && (1..=31).contains(&day) && hour < 24 && minute < 60 && second < 60
}

fn valid_time(tag: u8, contents: &[u8]) -> bool {
    match tag {
        UTC_TIME => {
            contents.len() == 13
                && contents[12] == b'Z'
                && digits(&contents[..12]).is_some()
                && valid_date_time(
                    digits(&contents[2..4]).unwrap_or(0),
                    digits(&contents[4..6]).unwrap_or(0),
                    digits(&contents[6..8]).unwrap_or(99),
                    digits(&contents[8..10]).unwrap_or(99),
                    digits(&contents[10..12]).unwrap_or(99),
                )
        }
        GENERALIZED_TIME => {
            let Some((b'Z', body)) = contents.split_last() else {
                return false;
            };
            let (whole, fraction) = match body.iter().position(|b| *b == b'.') {
                Some(dot) => (&body[..dot], Some(&body[dot + 1..])),
                None => (body, None),
            };
            if let Some(f) = fraction {
                if f.is_empty() || f.last() == Some(&b'0') || digits(f).is_none() {
                    return false;
                }
            }
            whole.len() == 14
                && digits(whole).is_some()
                && valid_date_time(
                    digits(&whole[4..6]).unwrap_or(0),
                    digits(&whole[6..8]).unwrap_or(0),
                    digits(&whole[8..10]).unwrap_or(99),
                    digits(&whole[10..12]).unwrap_or(99),
                    digits(&whole[12..14]).unwrap_or(99),
                )
        }
        _ => false,
    }
}

/// What the oracle's AlgorithmIdentifier accepts as parameters for a known algorithm.
#[derive(PartialEq)]
enum Params {
    /// Hashes, RSA, ECDSA with SHA-2, DSA with SHA-2, HMAC: absent or NULL.
    NullOrAbsent,
    /// EdDSA, X25519/X448, ECDSA with SHA-3: absent.
    Absent,
    /// id-ecPublicKey: a named curve (OID), NULL or a SEQUENCE.
    EcParameters,
    /// RSASSA-PSS: absent or a SEQUENCE; DSA: a SEQUENCE.
    Sequence { optional: bool },
    /// AES-CBC: a 16-byte OCTET STRING.
    Iv,
    /// Any other OID: anything or nothing.
    Any,
}

fn params_of(oid: &[u8]) -> Params {
    const NIST_HASH: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02];
    const NIST_SIG: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03];
    const PKCS1: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01];
    const ECDSA_SHA2: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03];
    const RSADSI_DIGEST: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x02];
    let last = |prefix: &[u8]| {
        oid.strip_prefix(prefix)
            .and_then(|r| (r.len() == 1).then(|| r[0]))
    };
    if let Some(n) = last(NIST_HASH) {
        return if matches!(n, 1..=4 | 7..=10) {
            Params::NullOrAbsent
        } else {
            Params::Any
        };
    }
    if let Some(n) = last(NIST_SIG) {
        return match n {
            1..=4 | 13..=16 => Params::NullOrAbsent, // DSA / RSA with SHA-2, SHA-3
            9..=12 => Params::Absent,                // ECDSA with SHA-3
            _ => Params::Any,
        };
    }
    if let Some(n) = last(PKCS1) {
        return match n {
            1 | 5 | 11..=14 => Params::NullOrAbsent,
            10 => Params::Sequence { optional: true },
            _ => Params::Any,
        };
    }
    if last(ECDSA_SHA2).is_some_and(|n| (1..=4).contains(&n))
        || last(RSADSI_DIGEST).is_some_and(|n| n == 7 || n == 9)
    {
        return Params::NullOrAbsent;
    }
    match oid {
        [0x2B, 0x0E, 0x03, 0x02, 0x1A | 0x1D] => Params::NullOrAbsent, // SHA-1, sha1WithRSA (OIW)
        [0x2B, 0x65, 0x6E..=0x71] => Params::Absent,
        [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01] => Params::EcParameters,
        // DSA, DH (X9.42), PKCS#3 dhKeyAgreement, PBKDF2, PBES2, PBES1 3DES: a SEQUENCE.
        [0x2A, 0x86, 0x48, 0xCE, 0x38, 0x04, 0x01]
        | [0x2A, 0x86, 0x48, 0xCE, 0x3E, 0x02, 0x01]
        | [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x03, 0x01]
        | [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x05, 0x0C | 0x0D]
        | [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x0C, 0x01, 0x03] => {
            Params::Sequence { optional: false }
        }
        // AES-128-CBC, AES-256-CBC: a 16-byte IV.
        [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02 | 0x2A] => Params::Iv,
        _ => Params::Any,
    }
}

fn valid_algorithm(contents: &[u8]) -> bool {
    let mut alg = Der::new(contents);
    let Some(oid) = alg.expect(OID).filter(|o| valid_oid(o)) else {
        return false;
    };
    let params = if alg.is_empty() {
        None
    } else {
        let Some(p) = alg.next() else { return false };
        Some(p)
    };
    if !alg.is_empty() {
        return false;
    }
    match params_of(oid) {
        Params::NullOrAbsent => params.is_none_or(|p| p == (0x05, &[][..])),
        Params::Absent => params.is_none(),
        Params::EcParameters => params.is_some_and(|(tag, c)| {
            (tag == OID && valid_oid(c)) || (tag == 0x05 && c.is_empty()) || tag == SEQUENCE
        }),
        Params::Sequence { optional } => params.map_or(optional, |(tag, _)| tag == SEQUENCE),
        Params::Iv => params.is_some_and(|(tag, c)| tag == OCTET_STRING && c.len() == 16),
        Params::Any => true,
    }
}

fn valid_extensions(contents: &[u8]) -> bool {
    let mut outer = Der::new(contents);
    let Some(list) = outer.expect(SEQUENCE) else {
        return false;
    };
    if !outer.is_empty() {
        return false;
    }
    let mut list = Der::new(list);
    while !list.is_empty() {
        let Some(ext) = list.expect(SEQUENCE) else {
            return false;
        };
        let mut ext = Der::new(ext);
        if !ext.expect(OID).is_some_and(valid_oid) {
            return false;
        }
        if ext.peek_tag() == Some(BOOLEAN) {
            // DEFAULT FALSE: DER forbids encoding the default, so only TRUE (0xff) may appear.
            if ext.expect(BOOLEAN) != Some(&[0xFF][..]) {
                return false;
            }
        }
        if ext.expect(OCTET_STRING).is_none() || !ext.is_empty() {
            return false;
        }
    }
    true
}

fn printable(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b)
}

/// One attribute value as the oracle decodes it: text, or bytes for a unique identifier.
enum AttrValue {
    Text(String),
    Bytes(Vec<u8>),
}

fn decode_value(oid: &[u8], tag: u8, data: &[u8]) -> Option<AttrValue> {
    match tag {
        BMP_STRING => {
            if !data.len().is_multiple_of(2) {
                return None;
            }
            let units = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
                .map(AttrValue::Text)
        }
        UNIVERSAL_STRING => {
            if !data.len().is_multiple_of(4) {
                return None;
            }
            data.chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect::<Option<String>>()
                .map(AttrValue::Text)
        }
        BIT_STRING => (oid == OID_UNIQUE_ID).then(|| AttrValue::Bytes(data.to_vec())),
        // The oracle's _ASN1Type: OctetString, UTF8String, NumericString, PrintableString,
        // T61String, IA5String, UTCTime, GeneralizedTime, VisibleString (all read as UTF-8).
        0x04 | 0x0C | 0x12 | 0x13 | 0x14 | 0x16 | 0x17 | 0x18 | 0x1A => {
            if tag == PRINTABLE_STRING && !data.iter().all(|b| printable(*b)) {
                return None;
            }
            std::str::from_utf8(data)
                .ok()
                .map(|s| AttrValue::Text(s.to_owned()))
        }
        _ => None,
    }
}

struct Attribute<'a> {
    oid: &'a [u8],
    value: AttrValue,
}

/// A Name's RDNs, each a list of attributes; None when the oracle refuses it.
fn parse_name(contents: &[u8]) -> Option<Vec<Vec<Attribute<'_>>>> {
    let mut rdns = Vec::new();
    let mut seq = Der::new(contents);
    let mut total = 0usize;
    while !seq.is_empty() {
        let set = seq.expect(SET)?;
        let mut set = Der::new(set);
        let mut rdn: Vec<Attribute> = Vec::new();
        while !set.is_empty() {
            total += 1;
            if total > MAX_ATTRIBUTES {
                return None;
            }
            let mut atv = Der::new(set.expect(SEQUENCE)?);
            let oid = atv.expect(OID)?;
            if !valid_oid(oid) {
                return None;
            }
            let (tag, data) = atv.next()?;
            if !atv.is_empty() {
                return None;
            }
            let value = decode_value(oid, tag, data)?;
            let duplicate = rdn
                .iter()
                .any(|a| a.oid == oid && same_value(&a.value, &value));
            if duplicate {
                return None; // "duplicate attributes are not allowed"
            }
            rdn.push(Attribute { oid, value });
        }
        if rdn.is_empty() {
            return None; // "a relative distinguished name cannot be empty"
        }
        rdns.push(rdn);
    }
    Some(rdns)
}

fn same_value(a: &AttrValue, b: &AttrValue) -> bool {
    match (a, b) {
        (AttrValue::Text(x), AttrValue::Text(y)) => x == y,
        (AttrValue::Bytes(x), AttrValue::Bytes(y)) => x == y,
        _ => false,
    }
}

fn short_name(oid: &[u8]) -> Option<&'static str> {
    Some(match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x0A] => "O",
        [0x55, 0x04, 0x0B] => "OU",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x09] => "STREET",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x01] => "UID",
        _ => return None,
    })
}

/// cryptography's _escape_dn_value.
fn escape_into(out: &mut String, value: &AttrValue) {
    let text = match value {
        AttrValue::Bytes(b) if b.is_empty() => return,
        AttrValue::Bytes(b) => {
            out.push('#');
            return crate::text::push_hex(out, b);
        }
        AttrValue::Text(t) => t,
    };
    let mut escaped = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        match c {
            '\\' | '"' | '+' | ',' | ';' | '<' | '>' => {
                escaped.push('\\');
                escaped.push(c);
            }
            '\0' => escaped.push_str("\\00"),
            _ => escaped.push(c),
        }
    }
    let mut chars = escaped.chars();
    match chars.next() {
        Some('#') => out.push('\\'),
        Some(' ') if chars.next().is_some() => out.push('\\'),
        _ => {}
    }
    if let Some(stripped) = escaped.strip_suffix(' ') {
        out.push_str(stripped);
        out.push_str("\\ ");
    } else {
        out.push_str(&escaped);
    }
}

/// The CN when there is one, else the RFC 4514 string (RDNs in reverse order).
fn name_text(rdns: &[Vec<Attribute>]) -> String {
    let cn = rdns.iter().flatten().find(|a| a.oid == OID_CN);
    if let Some(cn) = cn {
        return match &cn.value {
            AttrValue::Text(t) => clean_text(t.as_bytes(), MAX_TEXT),
            AttrValue::Bytes(b) => clean_text(b, MAX_TEXT),
        };
    }
    let mut out = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, attr) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            match short_name(attr.oid) {
                Some(name) => out.push_str(name),
                None => out.push_str(&dotted(attr.oid)),
            }
            out.push('=');
            escape_into(&mut out, &attr.value);
        }
    }
    clean_text(out.as_bytes(), MAX_TEXT)
}

/// (subject, issuer) Name contents of a certificate the oracle would load.
fn names(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut top = Der::new(der);
    let cert = top.expect(SEQUENCE)?;
    if !top.is_empty() {
        return None;
    }
    let mut cert = Der::new(cert);
    let tbs = cert.expect(SEQUENCE)?;
    if !valid_algorithm(cert.expect(SEQUENCE)?)
        || !valid_bit_string(cert.expect(BIT_STRING)?)
        || !cert.is_empty()
    {
        return None;
    }
    let mut tbs = Der::new(tbs);
    if tbs.peek_tag() == Some(0xA0) {
        let mut explicit = Der::new(tbs.expect(0xA0)?);
        // v1 is the DEFAULT (never encoded in DER); the oracle knows only v1 and v3.
        if explicit.expect(INTEGER)? != [2] || !explicit.is_empty() {
            return None;
        }
    }
    if !valid_integer(tbs.expect(INTEGER)?) || !valid_algorithm(tbs.expect(SEQUENCE)?) {
        return None;
    }
    let issuer = tbs.expect(SEQUENCE)?;
    let mut validity = Der::new(tbs.expect(SEQUENCE)?);
    for _ in 0..2 {
        let (tag, time) = validity.next()?;
        if !valid_time(tag, time) {
            return None;
        }
    }
    if !validity.is_empty() {
        return None;
    }
    let subject = tbs.expect(SEQUENCE)?;
    let mut spki = Der::new(tbs.expect(SEQUENCE)?);
    if !valid_algorithm(spki.expect(SEQUENCE)?)
        || !valid_bit_string(spki.expect(BIT_STRING)?)
        || !spki.is_empty()
    {
        return None;
    }
    for (tag, primitive) in [(0x81u8, true), (0x82, true), (0xA3, false)] {
        if tbs.peek_tag() == Some(tag) {
            let contents = tbs.expect(tag)?;
            let ok = if primitive {
                valid_bit_string(contents)
            } else {
                valid_extensions(contents)
            };
            if !ok {
                return None;
            }
        }
    }
    tbs.is_empty().then_some((subject, issuer))
}

/// Subject and issuer of one DER certificate (CN when present); empty when it does not parse.
pub fn certificate_meta(der: &[u8], meta: &mut Meta) {
    let Some((subject, issuer)) = names(der) else {
        return;
    };
    let (Some(subject), Some(issuer)) = (parse_name(subject), parse_name(issuer)) else {
        return;
    };
    meta.insert("cert_subject".into(), Value::from(name_text(&subject)));
    meta.insert("cert_issuer".into(), Value::from(name_text(&issuer)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if contents.len() < 0x80 {
            out.push(contents.len() as u8);
        } else if contents.len() < 0x100 {
            out.extend([0x81, contents.len() as u8]);
        } else {
            out.extend([0x82, (contents.len() >> 8) as u8, contents.len() as u8]);
        }
        out.extend_from_slice(contents);
        out
    }

    fn name(attrs: &[(&[u8], u8, &[u8])]) -> Vec<u8> {
        let mut rdns = Vec::new();
        for (oid, tag, value) in attrs {
            let atv = [tlv(OID, oid), tlv(*tag, value)].concat();
            rdns.extend(tlv(SET, &tlv(SEQUENCE, &atv)));
        }
        tlv(SEQUENCE, &rdns)
    }

    fn cert(subject: &[u8], issuer: &[u8]) -> Vec<u8> {
        let alg = tlv(
            SEQUENCE,
            &[tlv(OID, &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02])].concat(),
        );
        let validity = tlv(
            SEQUENCE,
            &[
                tlv(UTC_TIME, b"240101000000Z"),
                tlv(UTC_TIME, b"250101000000Z"),
            ]
            .concat(),
        );
        let spki = tlv(
            SEQUENCE,
            &[alg.clone(), tlv(BIT_STRING, &[0, 4, 1, 2])].concat(),
        );
        let tbs = tlv(
            SEQUENCE,
            &[
                tlv(0xA0, &tlv(INTEGER, &[2])),
                tlv(INTEGER, &[1]),
                alg.clone(),
                issuer.to_vec(),
                validity,
                subject.to_vec(),
                spki,
            ]
            .concat(),
        );
        tlv(SEQUENCE, &[tbs, alg, tlv(BIT_STRING, &[0, 1, 2])].concat())
    }

    #[test]
    fn common_name_or_rfc4514() {
        let subject = name(&[
            (&[0x55, 4, 6], 0x13, b"US"),
            (&[0x55, 4, 3], 0x0C, b"example.test"),
        ]);
        let issuer = name(&[
            (&[0x55, 4, 6], 0x13, b"US"),
            (&[0x55, 4, 10], 0x0C, b"Acme, Inc "),
            (&[0x2A, 3], 0x0C, b"#x"),
        ]);
        let mut meta = Meta::new();
        certificate_meta(&cert(&subject, &issuer), &mut meta);
        assert_eq!(meta["cert_subject"], "example.test");
        assert_eq!(meta["cert_issuer"], "1.2.3=\\#x,O=Acme\\, Inc\\ ,C=US");
    }

    #[test]
    fn refuses_what_the_oracle_refuses() {
        let ok = name(&[(&[0x55, 4, 3], 0x0C, b"a")]);
        for bad in [
            name(&[(&[0x55, 4, 3], 0x13, b"a*b")]), // not a PrintableString character
            name(&[(&[0x55, 4, 3], 0x0C, b"\xff")]), // not UTF-8
            name(&[(&[0x55, 4, 3], 0x05, b"")]),    // a type the oracle has no name for
        ] {
            let mut meta = Meta::new();
            certificate_meta(&cert(&bad, &ok), &mut meta);
            assert!(meta.is_empty());
        }
        let mut meta = Meta::new();
        let good = cert(&ok, &ok);
        certificate_meta(&good[..good.len() - 1], &mut meta);
        assert!(meta.is_empty());
    }
}
