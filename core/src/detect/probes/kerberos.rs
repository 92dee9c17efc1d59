//! Kerberos v5 (RFC 4120): an application-tagged message whose first field is pvno 5.
//!
//! `kerberos`: one UDP datagram; `kerberos_tcp`: the TCP stream, whose messages carry a 4-byte
//! length (RFC 4120 7.2.2). KDC requests (AS-REQ, TGS-REQ) open with [1] pvno, [2] msg-type;
//! replies, errors and AP messages with [0] pvno, [1] msg-type; msg-type must equal the
//! application tag.
//!
//! Meta: `krb_msg` ("as-req", "tgs-rep", "krb-error"...).
#![forbid(unsafe_code)]

use super::ber::{read_int, read_tlv};
use super::{Probe, ProbeResult, Status};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[
    Probe::single("kerberos", probe).answers(answers!["krb_msg"]),
    Probe::single("kerberos_tcp", probe_tcp).answers(answers!["krb_msg"]),
    Probe::single("kerberos_tcp_head", probe_tcp_head),
];

/// The largest record length taken for a partial head (RFC 4120 7.2.2 allows 2^31 - 1; KDCs
/// cap far lower, and the top byte set would be reserved-bit noise).
const MAX_HEAD_RECORD: u32 = 0x00ff_ffff;

/// The smallest record length taken for a Kerberos message on TCP.
const MIN_TCP_RECORD: u32 = 16;

fn message_name(app: u8) -> Option<&'static str> {
    Some(match app {
        10 => "as-req",
        11 => "as-rep",
        12 => "tgs-req",
        13 => "tgs-rep",
        14 => "ap-req",
        15 => "ap-rep",
        20 => "krb-safe",
        21 => "krb-priv",
        22 => "krb-cred",
        30 => "krb-error",
        _ => return None,
    })
}

fn parse(data: &[u8]) -> Option<&'static str> {
    let outer = read_tlv(data, 0)?;
    if outer.tag & 0xe0 != 0x60 {
        return None;
    }
    let app = outer.tag & 0x1f;
    let name = message_name(app)?;
    let seq = read_tlv(data, outer.start)?;
    if seq.tag != 0x30 {
        return None;
    }
    let first = read_tlv(data, seq.start)?;
    // KDC-REQ numbers its fields from [1] (pvno, msg-type); replies, errors and AP messages from [0].
    let want_first = if matches!(app, 10 | 12) { 0xa1 } else { 0xa0 };
    if first.tag != want_first {
        return None;
    }
    let (pvno, after_pvno) = read_int(data, first.start)?;
    if pvno != 5 {
        return None;
    }
    let second = read_tlv(data, after_pvno)?;
    if second.tag != want_first + 1 {
        return None;
    }
    let (msg_type, _) = read_int(data, second.start)?;
    (msg_type == i64::from(app)).then_some(name)
}

/// RFC 4120 3.1, 3.3: a client sends KRB_AS_REQ and KRB_TGS_REQ; the KDC answers with a reply or
/// KRB_ERROR. The AP and application messages pass between a client and a service: either side.
fn message_fits_side(name: &str, from_client: bool) -> bool {
    match name {
        "as-req" | "tgs-req" => from_client,
        "as-rep" | "tgs-rep" | "krb-error" => !from_client,
        _ => true,
    }
}

pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    match parse(data).filter(|name| message_fits_side(name, from_client)) {
        Some(name) => {
            let mut meta = Meta::new();
            meta.insert("krb_msg".into(), json!(name));
            ProbeResult::hit(meta)
        }
        None => ProbeResult::no(),
    }
}

pub fn probe_tcp(data: &[u8], from_client: bool) -> ProbeResult {
    let Some(&[a, b, c, d]) = data.get(..4) else {
        return ProbeResult::no();
    };
    let length = u32::from_be_bytes([a, b, c, d]);
    if data.len() < 8 || length & 0x8000_0000 != 0 || length < MIN_TCP_RECORD {
        return ProbeResult::no();
    }
    probe(data.get(4..).unwrap_or_default(), from_client)
}

/// The first TCP segment of a Kerberos exchange when it holds only the 4-byte record mark, or the
/// mark and the start of the message (RFC 4120 7.2.2): every byte present must fit a KDC message,
/// and the record length must equal the outer element's when its header is there. Weaker than
/// `kerberos_tcp` (a length alone is four bytes of evidence): the signature scopes it to 88/464.
pub fn probe_tcp_head(data: &[u8], from_client: bool) -> ProbeResult {
    let Some(&[a, b, c, d]) = data.get(..4) else {
        return ProbeResult::no();
    };
    let length = u32::from_be_bytes([a, b, c, d]);
    if !(MIN_TCP_RECORD..=MAX_HEAD_RECORD).contains(&length) {
        return ProbeResult::no();
    }
    let body = data.get(4..).unwrap_or_default();
    let Some(&tag) = body.first() else {
        return ProbeResult::hit(Meta::new()); // the record mark alone
    };
    if tag & 0xe0 != 0x60 || message_name(tag & 0x1f).is_none() {
        return ProbeResult::no();
    }
    let Some(outer) = read_tlv(body, 0) else {
        // A cut header: a long-form length whose octets are not all here yet.
        return match body.get(1) {
            None => ProbeResult::hit(Meta::new()),
            Some(&l) if (0x81..=0x84).contains(&l) => ProbeResult::hit(Meta::new()),
            _ => ProbeResult::no(),
        };
    };
    if u32::try_from(outer.end()).ok() != Some(length) {
        return ProbeResult::no();
    }
    // Enough for pvno and msg-type: the full parse must hold.
    let r = probe(body, from_client);
    if r.status == Status::Match || body.len() < outer.start + 14 {
        if r.status == Status::Match {
            return r;
        }
        return match body.get(outer.start) {
            None | Some(0x30) => ProbeResult::hit(Meta::new()),
            _ => ProbeResult::no(),
        };
    }
    ProbeResult::no()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.extend_from_slice(&[0x82, (content.len() >> 8) as u8, content.len() as u8]);
        }
        out.extend_from_slice(content);
        out
    }

    fn int(v: u8) -> Vec<u8> {
        tlv(0x02, &[v])
    }

    /// AS-REQ (RFC 4120 5.4.1): [1] pvno 5, [2] msg-type 10, [4] req-body with realm and names.
    fn as_req() -> Vec<u8> {
        let cname = tlv(
            0x30,
            &[
                tlv(0xa0, &int(1)),
                tlv(0xa1, &tlv(0x30, &tlv(0x1b, b"alice"))),
            ]
            .concat(),
        );
        let sname = tlv(
            0x30,
            &[
                tlv(0xa0, &int(2)),
                tlv(
                    0xa1,
                    &tlv(
                        0x30,
                        &[tlv(0x1b, b"krbtgt"), tlv(0x1b, b"EXAMPLE.ORG")].concat(),
                    ),
                ),
            ]
            .concat(),
        );
        let body = tlv(
            0x30,
            &[
                tlv(0xa0, &tlv(0x03, &[0, 0x40, 0x81, 0, 0x10])), // kdc-options
                tlv(0xa1, &cname),
                tlv(0xa2, &tlv(0x1b, b"EXAMPLE.ORG")),
                tlv(0xa3, &sname),
                tlv(0xa5, &tlv(0x18, b"20370913024805Z")),
                tlv(0xa7, &int(42)),                                 // nonce
                tlv(0xa8, &tlv(0x30, &[int(18), int(17)].concat())), // etypes
            ]
            .concat(),
        );
        tlv(
            0x6a,
            &tlv(
                0x30,
                &[tlv(0xa1, &int(5)), tlv(0xa2, &int(10)), tlv(0xa4, &body)].concat(),
            ),
        )
    }

    /// KRB-ERROR (RFC 4120 5.9.1): [0] pvno 5, [1] msg-type 30, ... error-code 25 (preauth required).
    fn krb_error() -> Vec<u8> {
        let fields = [
            tlv(0xa0, &int(5)),
            tlv(0xa1, &int(30)),
            tlv(0xa4, &tlv(0x18, b"20240101000000Z")),
            tlv(0xa5, &int(0)),
            tlv(0xa6, &int(25)),
            tlv(0xa9, &tlv(0x1b, b"EXAMPLE.ORG")),
        ];
        tlv(0x7e, &tlv(0x30, &fields.concat()))
    }

    #[test]
    fn udp_messages() {
        assert_eq!(probe(&as_req(), true).meta["krb_msg"], "as-req");
        assert_eq!(probe(&krb_error(), false).meta["krb_msg"], "krb-error");
        // The client asks, the KDC answers.
        assert_eq!(probe(&as_req(), false).status, Status::No);
        assert_eq!(probe(&krb_error(), true).status, Status::No);
        let mut wrong_type = as_req();
        let at = wrong_type
            .windows(3)
            .position(|w| w == [0x02, 0x01, 10])
            .unwrap();
        wrong_type[at + 2] = 11;
        assert_eq!(probe(&wrong_type, true).status, Status::No);
        let mut pvno4 = krb_error();
        pvno4[6] = 4;
        assert_eq!(probe(&pvno4, false).status, Status::No);
    }

    #[test]
    fn tcp_record_mark() {
        let msg = as_req();
        let mut framed = (msg.len() as u32).to_be_bytes().to_vec();
        framed.extend(&msg);
        assert_eq!(probe_tcp(&framed, true).meta["krb_msg"], "as-req");
        framed[0] = 0x80;
        assert_eq!(probe_tcp(&framed, true).status, Status::No);
        assert_eq!(
            probe_tcp(&[0, 0, 0, 15, 0x6a, 0x81, 0x10, 0x30], true).status,
            Status::No
        );
    }

    #[test]
    fn python_vectors() {
        for name in ["kerberos", "kerberos_tcp"] {
            crate::detect::probes::vectors::replay(name);
        }
    }
}
