//! mDNS (RFC 6762) and LLMNR (RFC 4795): the DNS message layout with their own rules.
//!
//! Unicast DNS rules do not fit: mDNS responses carry no question and queries may carry many,
//! both may be sent by either side; LLMNR answers carry the question but C/T flags are its own.
//! So these probes check the header and the first record only (bounded), and the signatures
//! scope them to the protocols' ports (5353, 5355), since the layout alone cannot tell the three
//! apart.
//!
//! Meta: `dns_query` and `dns_qtype` of the first question (or the first answer's name for an
//! mDNS announcement), and for responses `dns_answer_count`.
#![forbid(unsafe_code)]

use super::dns::{qclass_known, read_name, type_name};
use super::{Probe, ProbeResult};
use crate::meta::{Meta, Value};
use crate::text::clean_text;

pub static PROBES: &[Probe] = &[
    Probe::single("mdns", probe_mdns),
    Probe::single("llmnr", probe_llmnr),
];

const MAX_COUNT: u16 = 512;
const NAME_LIMIT: usize = 300;

fn be16(data: &[u8], off: usize) -> Option<u16> {
    let b = data.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// The first question's (or record's) name and type, when it is whole and of a known class.
fn first_record(data: &[u8], question: bool) -> Option<(String, u16)> {
    let (name, end) = read_name(data, 12)?;
    if end + if question { 4 } else { 10 } > data.len() {
        return None;
    }
    let (rtype, rclass) = (be16(data, end)?, be16(data, end + 2)?);
    if rtype == 0 || !qclass_known(rclass) {
        return None;
    }
    Some((name, rtype))
}

/// The QR bit: set in a response.
fn is_response(data: &[u8]) -> bool {
    data.get(2).is_some_and(|b| b >> 7 == 1)
}

fn meta_of(data: &[u8], llmnr: bool) -> Option<Meta> {
    let word = |i: usize| be16(data, 2 * i);
    let (flags, qd, an, ns, ar) = (word(1)?, word(2)?, word(3)?, word(4)?, word(5)?);
    let (opcode, rcode) = ((flags >> 11) & 0xF, flags & 0xF);
    if opcode != 0 || (rcode != 0 && !llmnr) || qd.max(an).max(ns).max(ar) > MAX_COUNT {
        return None;
    }
    if llmnr && qd != 1 {
        return None; // RFC 4795 §2.1.1: exactly one question, in queries and responses
    }
    let (name, rtype) = if qd > 0 {
        first_record(data, true)?
    } else if an > 0 || ns > 0 {
        first_record(data, false)?
    } else {
        return None;
    };
    let mut meta = Meta::new();
    meta.insert(
        "dns_query".into(),
        Value::from(clean_text(name.as_bytes(), NAME_LIMIT)),
    );
    meta.insert("dns_qtype".into(), Value::from(type_name(rtype)));
    if flags >> 15 == 1 {
        meta.insert("dns_answer_count".into(), Value::from(an));
    }
    Some(meta)
}

/// Names mDNS answers for (RFC 6762 3 and 4): `.local.` and the link-local reverse zones.
const MDNS_ZONES: [&str; 5] = [
    "local.",
    "254.169.in-addr.arpa.",
    "8.e.f.ip6.arpa.",
    "9.e.f.ip6.arpa.",
    "a.e.f.ip6.arpa.",
];

/// A unicast resolver's query sent to 5353: a query ID and the recursion-desired bit (RFC 6762
/// 18.1 and 18.6 ask mDNS senders for a zero ID in multicast queries and a clear RD bit) for a
/// name outside the zones mDNS serves. A legacy one-shot query (`dig -p 5353 @224.0.0.251`) sets
/// both too, but asks for a `.local.` name.
fn unicast_dns(data: &[u8], meta: &Meta) -> bool {
    let (Some(id), Some(flags)) = (be16(data, 0), be16(data, 2)) else {
        return false;
    };
    let name = meta
        .get("dns_query")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mdns_name = MDNS_ZONES
        .iter()
        .any(|z| name == *z || name.ends_with(&format!(".{z}")));
    id != 0 && flags & 0x0100 != 0 && !mdns_name
}

pub fn probe_mdns(data: &[u8], _from_client: bool) -> ProbeResult {
    match meta_of(data, false) {
        Some(meta) if !unicast_dns(data, &meta) => ProbeResult::hit(meta),
        _ => ProbeResult::no(),
    }
}

/// RFC 4795 §2.1.1: a sender queries (QR clear) and a responder answers (QR set), always by
/// unicast; an answer seen first is a flow whose query went to the group.
pub fn probe_llmnr(data: &[u8], from_client: bool) -> ProbeResult {
    if is_response(data) == from_client {
        return ProbeResult::no();
    }
    meta_of(data, true).map_or_else(ProbeResult::no, ProbeResult::hit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    #[test]
    fn python_vectors() {
        for name in ["mdns", "llmnr"] {
            crate::detect::probes::vectors::replay(name);
        }
    }

    /// An mDNS announcement (RFC 6762 §8.3): a response with no question whose first answer
    /// is _ipp._tcp.local PTR, cache-flush bit set in the class.
    #[test]
    fn mdns_announcement() {
        let mut m = vec![0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        m.extend(b"\x04_ipp\x04_tcp\x05local\x00");
        m.extend([0, 12, 0x80, 1, 0, 0, 0x11, 0x94, 0, 2, 0xC0, 12]);
        let got = probe_mdns(&m, false);
        assert_eq!(got.status, Status::Match);
        let want = serde_json::json!({"dns_query": "_ipp._tcp.local.", "dns_qtype": "PTR", "dns_answer_count": 1});
        assert_eq!(Value::from(got.meta), want);
        // LLMNR needs exactly one question
        assert_eq!(probe_llmnr(&m, false).status, Status::No);
    }

    /// An LLMNR query (RFC 4795 §2.1) for "wpad", type A; the response sets QR and keeps it.
    #[test]
    fn llmnr_query_and_response() {
        let mut q = vec![0x8A, 0x1B, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend(b"\x04wpad\x00\x00\x01\x00\x01");
        let got = probe_llmnr(&q, true);
        assert_eq!(
            Value::from(got.meta),
            serde_json::json!({"dns_query": "wpad.", "dns_qtype": "A"})
        );
        let mut r = q.clone();
        r[2] = 0x80;
        r[3] = 0x03; // an rcode: allowed for LLMNR, not for mDNS
        r[7] = 1;
        assert_eq!(probe_llmnr(&r, false).meta["dns_answer_count"], 1);
        // Queries come from the client, answers from the responder.
        assert_eq!(probe_llmnr(&q, false).status, Status::No);
        assert_eq!(probe_llmnr(&r, true).status, Status::No);
        assert_eq!(probe_mdns(&r, false).status, Status::No);
        assert_eq!(probe_mdns(&q[..q.len() - 1], true).status, Status::No);
    }
}
