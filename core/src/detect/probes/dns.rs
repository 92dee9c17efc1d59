//! DNS probe: header plausibility, question and answers (RFC 1035 wire format).
//!
//! - `dns`: one UDP datagram. `dns_tcp`: the TCP stream prefix, where each message carries a
//!   2-byte length (RFC 1035 §4.2.2).
//! - [`parse_message`] is the structural parser alone, without the unicast-DNS plausibility
//!   rules; [`read_name`], [`type_name`] and [`qclass_known`] serve mDNS / LLMNR too.
//!
//! Rules: QR must match the direction (queries from the client, responses from the server);
//! opcode QUERY, IQUERY, STATUS, NOTIFY, UPDATE or DSO; 1..4 questions (a response may carry none
//! only as a bare FORMERR/NOTIMP/REFUSED header); bounded record counts; names with
//! compression-pointer loop protection. For UDP every counted record must be present; over TCP a
//! message cut by the detection depth matches once its question is complete (MORE before that).
//!
//! Meta: `dns_query`, `dns_qtype`, `dns_qclass` (only when not IN), `dns_opcode` (only when not
//! QUERY), `dns_rcode` and `dns_answers` (responses: up to 16 strings like "A 192.0.2.1").
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{Meta, Value};
use crate::text::{clean_text, ipv4_text, ipv6_text, MAX_TEXT};

pub static PROBES: &[Probe] = &[
    Probe::single("dns", probe),
    Probe::single("dns_tcp", probe_tcp),
];

/// A TCP length prefix and the largest message it can announce.
const MAX_INPUT: usize = 65536 + 2;
const MAX_QUESTIONS: u16 = 4;
const MAX_ANSWERS_SHOWN: usize = 16;
/// Records walked per message.
const MAX_RECORDS: usize = 512;
const MAX_POINTER_HOPS: usize = 32;
/// Presentation text of a 255-byte name with every byte escaped.
const NAME_LIMIT: usize = 1100;
const MAX_TXT_STRINGS: usize = 16;

/// The name of a record type ("A", "TYPE65399"...).
pub fn type_name(value: u16) -> String {
    let known = match value {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        24 => "SIG",
        25 => "KEY",
        28 => "AAAA",
        29 => "LOC",
        33 => "SRV",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        39 => "DNAME",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        53 => "SMIMEA",
        55 => "HIP",
        59 => "CDS",
        60 => "CDNSKEY",
        61 => "OPENPGPKEY",
        62 => "CSYNC",
        63 => "ZONEMD",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        _ => return format!("TYPE{value}"),
    };
    known.to_owned()
}

fn class_name(class: u16) -> Option<&'static str> {
    Some(match class {
        1 => "IN",
        3 => "CH",
        4 => "HS",
        254 => "NONE",
        255 => "ANY",
        _ => return None,
    })
}

/// A question or record class we know, once the mDNS unicast-response / cache-flush bit is off.
pub fn qclass_known(class: u16) -> bool {
    class_name(class & 0x7FFF).is_some()
}

fn opcode_name(op: u8) -> Option<&'static str> {
    Some(match op {
        0 => "QUERY",
        1 => "IQUERY",
        2 => "STATUS",
        4 => "NOTIFY",
        5 => "UPDATE",
        6 => "DSO",
        _ => return None,
    })
}

fn rcode_name(rcode: u8) -> Option<&'static str> {
    Some(match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        11 => "DSOTYPENI",
        _ => return None,
    })
}

fn be16(data: &[u8], off: usize) -> Option<u16> {
    let b = data.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Label bytes shown as they are; "." and "\" are escaped with a backslash, the rest as \DDD.
fn push_label(out: &mut String, label: &[u8]) {
    for &b in label {
        match b {
            b'.' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x21..=0x7E => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
}

/// Walks the name at `off`: the offset after it in place, and its presentation text into `text`
/// when one is given. None when malformed.
///
/// Compression pointers must point strictly backwards of the label that holds them and are
/// followed at most `MAX_POINTER_HOPS` times, so a loop cannot hang the parser; labels add at
/// most 254 wire bytes, so the walk is bounded either way.
fn walk_name(msg: &[u8], off: usize, mut text: Option<&mut String>) -> Option<usize> {
    let mut wire_len = 0usize;
    let mut end: Option<usize> = None;
    let mut pos = off;
    let mut hops = 0usize;
    let mut labels = 0usize;
    loop {
        let length = *msg.get(pos)?;
        if length == 0 {
            if end.is_none() {
                end = Some(pos + 1);
            }
            break;
        }
        match length & 0xC0 {
            0xC0 => {
                let low = *msg.get(pos + 1)?;
                let target = (usize::from(length & 0x3F) << 8) | usize::from(low);
                if end.is_none() {
                    end = Some(pos + 2);
                }
                hops += 1;
                if target >= pos || hops > MAX_POINTER_HOPS {
                    return None;
                }
                pos = target;
            }
            0 => {
                let length = usize::from(length);
                wire_len += length + 1;
                let label = msg.get(pos + 1..pos + 1 + length);
                if wire_len > 254 {
                    return None;
                }
                let label = label?;
                if let Some(out) = text.as_deref_mut() {
                    if labels > 0 {
                        out.push('.');
                    }
                    push_label(out, label);
                }
                labels += 1;
                pos += 1 + length;
            }
            _ => return None, // 0x40 / 0x80 label types are not in use
        }
    }
    if let Some(out) = text {
        out.push('.'); // the root alone is "."
    }
    end
}

/// (presentation name, offset after the name in place), or None when malformed.
pub fn read_name(msg: &[u8], off: usize) -> Option<(String, usize)> {
    let mut text = String::new();
    let end = walk_name(msg, off, Some(&mut text))?;
    Some((text, end))
}

fn name_or_what(msg: &[u8], off: usize) -> String {
    read_name(msg, off).map_or_else(|| "?".to_owned(), |n| n.0)
}

/// The text of a record's data; `start + rdlen` is within `msg`.
fn rdata_text(msg: &[u8], rtype: u16, start: usize, rdlen: usize) -> String {
    let rdata = msg.get(start..start + rdlen).unwrap_or_default();
    if let (1, Ok(addr)) = (rtype, <[u8; 4]>::try_from(rdata)) {
        return ipv4_text(&addr);
    }
    if let (28, Ok(addr)) = (rtype, <[u8; 16]>::try_from(rdata)) {
        return ipv6_text(&addr);
    }
    match rtype {
        2 | 5 | 12 | 39 => name_or_what(msg, start),
        15 if rdlen >= 3 => {
            let pref = be16(msg, start).unwrap_or_default();
            format!("{pref} {}", name_or_what(msg, start + 2))
        }
        33 if rdlen >= 7 => {
            let field = |i: usize| be16(msg, start + 2 * i).unwrap_or_default();
            format!(
                "{} {} {} {}",
                field(0),
                field(1),
                field(2),
                name_or_what(msg, start + 6)
            )
        }
        16 | 99 => {
            let mut parts = Vec::new();
            let mut i = 0usize;
            while let Some(&n) = rdata.get(i) {
                if parts.len() >= MAX_TXT_STRINGS {
                    break;
                }
                let end = (i + 1 + usize::from(n)).min(rdata.len());
                let s = rdata.get(i + 1..end).unwrap_or_default();
                parts.push(format!("\"{}\"", String::from_utf8_lossy(s)));
                i += 1 + usize::from(n);
            }
            parts.join(" ")
        }
        _ => format!("({rdlen} bytes)"),
    }
}

/// A DNS message's header, first questions and shown answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: u16,
    pub qr: bool,
    pub opcode: u8,
    pub rcode: u8,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
    /// (name, qtype, qclass)
    pub questions: Vec<(String, u16, u16)>,
    /// (record type, data text), at most `MAX_ANSWERS_SHOWN`.
    pub answers: Vec<(u16, String)>,
    /// Every counted record was present and walked.
    pub complete: bool,
}

/// Parse one DNS message (no TCP length prefix). None when the header or a question is
/// malformed, or (unless `partial`) when a counted record is missing or overruns the message.
pub fn parse_message(data: &[u8], partial: bool) -> Option<Message> {
    let word = |i: usize| be16(data, 2 * i);
    let (id, flags) = (word(0)?, word(1)?);
    let (qd, an, ns, ar) = (word(2)?, word(3)?, word(4)?, word(5)?);
    let mut msg = Message {
        id,
        qr: flags >> 15 == 1,
        opcode: ((flags >> 11) & 0xF) as u8,
        rcode: (flags & 0xF) as u8,
        qdcount: qd,
        ancount: an,
        nscount: ns,
        arcount: ar,
        questions: Vec::new(),
        answers: Vec::new(),
        complete: false,
    };
    if qd > MAX_QUESTIONS {
        return None;
    }
    let mut off = 12;
    for _ in 0..qd {
        let (name, end) = read_name(data, off)?;
        let (qtype, qclass) = (be16(data, end)?, be16(data, end + 2)?);
        msg.questions.push((name, qtype, qclass));
        off = end + 4;
    }
    let records = usize::from(an) + usize::from(ns) + usize::from(ar);
    for index in 0..records.min(MAX_RECORDS) {
        let shown = index < usize::from(an) && msg.answers.len() < MAX_ANSWERS_SHOWN;
        let fixed = walk_name(data, off, None).filter(|end| end + 10 <= data.len());
        let Some(end) = fixed else {
            return partial.then_some(msg);
        };
        let rtype = be16(data, end).unwrap_or_default();
        let rdlen = usize::from(be16(data, end + 8).unwrap_or_default());
        let start = end + 10;
        if start + rdlen > data.len() {
            return partial.then_some(msg);
        }
        if shown {
            msg.answers
                .push((rtype, rdata_text(data, rtype, start, rdlen)));
        }
        off = start + rdlen;
    }
    msg.complete = records <= MAX_RECORDS;
    Some(msg)
}

fn question_ok(q: &(String, u16, u16)) -> bool {
    q.1 != 0 && qclass_known(q.2)
}

/// Direction and header fields of a unicast DNS message (first 12 bytes, or fewer).
fn header_ok(data: &[u8], from_client: bool) -> bool {
    if let Some(&b2) = data.get(2) {
        if (b2 >> 7 == 0) != from_client || opcode_name((b2 >> 3) & 0xF).is_none() {
            return false;
        }
    }
    let word = |i: usize| be16(data, 2 * i).map_or(0, usize::from);
    if data.len() < 12 {
        return true;
    }
    let (flags, qd, an, ns, ar) = (word(1), word(2), word(3), word(4), word(5));
    let rcode = (flags & 0xF) as u8;
    let max_q = usize::from(MAX_QUESTIONS);
    if from_client {
        return rcode == 0 && (1..=max_q).contains(&qd) && an <= 16 && ns <= 64 && ar <= 16;
    }
    if rcode_name(rcode).is_none() || qd > max_q || an + ns + ar > 4096 {
        return false;
    }
    qd > 0 || (matches!(rcode, 1 | 4 | 5) && an + ns + ar == 0 && data.len() == 12)
}

fn meta_of(msg: &Message, from_client: bool) -> Meta {
    let mut meta = Meta::new();
    if let Some((name, qtype, qclass)) = msg.questions.first() {
        meta.insert(
            "dns_query".into(),
            Value::from(clean_text(name.as_bytes(), NAME_LIMIT)),
        );
        meta.insert("dns_qtype".into(), Value::from(type_name(*qtype)));
        if qclass & 0x7FFF != 1 {
            let text =
                class_name(qclass & 0x7FFF).map_or_else(|| qclass.to_string(), str::to_owned);
            meta.insert("dns_qclass".into(), Value::from(text));
        }
    }
    if msg.opcode != 0 {
        let text = opcode_name(msg.opcode).map_or_else(|| msg.opcode.to_string(), str::to_owned);
        meta.insert("dns_opcode".into(), Value::from(text));
    }
    if !from_client {
        let text = rcode_name(msg.rcode).map_or_else(|| msg.rcode.to_string(), str::to_owned);
        meta.insert("dns_rcode".into(), Value::from(text));
        let answers = msg
            .answers
            .iter()
            .map(|(rtype, text)| {
                let name = type_name(*rtype);
                let mut line = String::with_capacity(name.len() + 1 + text.len());
                line.push_str(&name);
                line.push(' ');
                line.push_str(text);
                Value::from(clean_text(line.as_bytes(), MAX_TEXT))
            })
            .collect();
        meta.insert("dns_answers".into(), Value::Array(answers));
    }
    meta
}

fn probe_message(body: &[u8], from_client: bool, partial: bool) -> ProbeResult {
    if !header_ok(body, from_client) {
        return ProbeResult::no();
    }
    match parse_message(body, partial) {
        // A whole message is the direction's facts: they name its first transaction, and a
        // later query or answer on the flow (glibc asks A and AAAA on one socket) adds nothing
        // of its own to them, so the flow needs no more inspection once both sides have spoken.
        Some(msg) if msg.questions.iter().all(question_ok) => {
            ProbeResult::hit_done(meta_of(&msg, from_client), !partial)
        }
        _ => ProbeResult::no(),
    }
}

/// One DNS datagram.
pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    let data = data.get(..MAX_INPUT).unwrap_or(data);
    if data.len() < 12 {
        return ProbeResult::no();
    }
    probe_message(data, from_client, false)
}

/// DNS over TCP: `data` is the stream prefix, messages prefixed by a 2-byte length.
pub fn probe_tcp(data: &[u8], from_client: bool) -> ProbeResult {
    let data = data.get(..MAX_INPUT).unwrap_or(data);
    let Some(length) = be16(data, 0).map(usize::from) else {
        return ProbeResult::more();
    };
    if length < 12 {
        return ProbeResult::no();
    }
    let body = data.get(2..).unwrap_or_default();
    let body = body.get(..length).unwrap_or(body);
    if !header_ok(body, from_client) {
        return ProbeResult::no();
    }
    if body.len() < 12 {
        return ProbeResult::more();
    }
    if body.len() == length {
        return probe_message(body, from_client, false);
    }
    let result = probe_message(body, from_client, true);
    if result.status == super::Status::No {
        // the question itself may be what is cut: wait while the header holds
        return if question_prefix_ok(body) {
            ProbeResult::more()
        } else {
            ProbeResult::no()
        };
    }
    result
}

/// True when the bytes after the header are a plausible beginning of the first question.
fn question_prefix_ok(body: &[u8]) -> bool {
    let mut pos = 12;
    while let Some(&length) = body.get(pos) {
        if length == 0 {
            return body.len() < pos + 5; // the name ended; the fixed fields are what is missing
        }
        if length & 0xC0 != 0 {
            return false;
        }
        pos += 1 + usize::from(length);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    #[test]
    fn python_vectors() {
        for name in ["dns", "dns_tcp"] {
            crate::detect::probes::vectors::replay(name);
        }
    }

    fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
        let mut out = Vec::new();
        for w in [id, flags, counts[0], counts[1], counts[2], counts[3]] {
            out.extend_from_slice(&w.to_be_bytes());
        }
        out
    }

    fn name(labels: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for l in labels {
            out.push(l.len() as u8);
            out.extend_from_slice(l);
        }
        out.push(0);
        out
    }

    /// A response for www.example.com A with a CNAME, an A, an AAAA, a TXT and an MX answer,
    /// names compressed against the question (RFC 1035 §4.1.4).
    fn response() -> Vec<u8> {
        let mut m = header(0x1234, 0x8180, [1, 5, 0, 0]);
        m.extend(name(&[b"www", b"example", b"com"]));
        m.extend([0, 1, 0, 1]);
        let rr = |m: &mut Vec<u8>, rtype: u16, rdata: &[u8]| {
            m.extend([0xC0, 12]);
            m.extend(rtype.to_be_bytes());
            m.extend([0, 1, 0, 0, 0x0E, 0x10]);
            m.extend((rdata.len() as u16).to_be_bytes());
            m.extend_from_slice(rdata);
        };
        rr(&mut m, 5, &[3, b'c', b'd', b'n', 0xC0, 16]); // cdn.example.com.
        rr(&mut m, 1, &[192, 0, 2, 1]);
        let mut v6 = [0u8; 16];
        v6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v6[15] = 1;
        rr(&mut m, 28, &v6);
        rr(&mut m, 16, b"\x0bv=spf1 -all\x03a\x1bb");
        rr(&mut m, 15, &[0, 10, 2, b'm', b'x', 0xC0, 16]);
        m
    }

    #[test]
    fn response_answers() {
        let got = probe(&response(), false);
        assert_eq!(got.status, Status::Match);
        let want = serde_json::json!({
            "dns_query": "www.example.com.",
            "dns_qtype": "A",
            "dns_rcode": "NOERROR",
            "dns_answers": [
                "CNAME cdn.example.com.",
                "A 192.0.2.1",
                "AAAA 2001:db8::1",
                "TXT \"v=spf1 -all\" \"a\\x1bb\"",
                "MX 10 mx.example.com.",
            ],
        });
        assert_eq!(Value::from(got.meta), want);
        // the same bytes from the client side: QR says response
        assert_eq!(probe(&response(), true).status, Status::No);
        // a counted record missing: no for UDP
        let cut = response();
        assert_eq!(probe(&cut[..cut.len() - 1], false).status, Status::No);
    }

    #[test]
    fn tcp_prefix() {
        let mut q = header(7, 0x0100, [1, 0, 0, 0]);
        q.extend(name(&[b"a\\b", b"c.d", b"\x00"]));
        q.extend([0, 16, 0, 3]);
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend(&q);
        let got = probe_tcp(&framed, true);
        assert_eq!(got.status, Status::Match);
        assert_eq!(got.meta["dns_query"], "a\\\\b.c\\.d.\\000.");
        assert_eq!(got.meta["dns_qtype"], "TXT");
        assert_eq!(got.meta["dns_qclass"], "CH");
        // cut inside the question: more; every cut of the header too
        for cut in 0..framed.len() {
            let want = if cut < framed.len() {
                Status::More
            } else {
                Status::Match
            };
            assert_eq!(probe_tcp(&framed[..cut], true).status, want, "cut {cut}");
        }
    }

    #[test]
    fn a_whole_message_is_its_directions_facts_a_cut_one_is_not() {
        assert!(probe(&response(), false).done);
        let mut framed = (response().len() as u16).to_be_bytes().to_vec();
        framed.extend(response());
        assert!(probe_tcp(&framed, false).done);
        // Cut inside the answers: the question's facts, with the rest still to come.
        let cut = probe_tcp(&framed[..framed.len() - 4], false);
        assert_eq!((cut.status, cut.done), (Status::Match, false));
        assert_eq!(cut.meta["dns_query"], "www.example.com.");
    }

    #[test]
    fn pointer_loops_and_bounds() {
        // a pointer to itself, a forward pointer, and a chain longer than the hop limit
        let mut m = header(1, 0x0100, [1, 0, 0, 0]);
        m.extend([0xC0, 12, 0, 1, 0, 1]);
        assert!(read_name(&m, 12).is_none());
        assert_eq!(probe(&m, true).status, Status::No);
        let mut fwd = header(1, 0x0100, [1, 0, 0, 0]);
        fwd.extend([0xC0, 14, 0, 0, 1, 0, 1]);
        assert!(read_name(&fwd, 12).is_none());
        // each pointer at 1 + 2i points to the one before it (offset 2i - 1), the first to the root
        let mut chain = vec![0u8, 0xC0, 0];
        for i in 1..40usize {
            let target = 1 + 2 * (i - 1);
            chain.extend([0xC0 | (target >> 8) as u8, target as u8]);
        }
        assert_eq!(
            read_name(&chain, 1 + 2 * 31),
            Some((".".to_owned(), 1 + 2 * 31 + 2))
        );
        assert!(read_name(&chain, 1 + 2 * 32).is_none());
        // 255 wire bytes are one too many
        let long: Vec<u8> = [[63u8; 1].as_slice(), &[b'a'; 63]].concat().repeat(4);
        assert!(read_name(&[long.as_slice(), &[0]].concat(), 0).is_none());
        assert!(read_name(&[&long[..192], &[61], &[b'a'; 61], &[0]].concat(), 0).is_some());
    }

    #[test]
    fn ipv4_compatible_aaaa_like_ipaddress() {
        let mut m = header(1, 0x8180, [1, 1, 0, 0]);
        m.extend(name(&[b"x"]));
        m.extend([0, 28, 0, 1, 0xC0, 12, 0, 28, 0, 1, 0, 0, 0, 0, 0, 16]);
        m.extend([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 192, 0, 2, 1]);
        assert_eq!(
            probe(&m, false).meta["dns_answers"][0],
            "AAAA ::ffff:c000:201"
        );
    }
}
