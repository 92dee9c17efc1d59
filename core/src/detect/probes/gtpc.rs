//! GTP-C: the header of one datagram to or from port 2123.
//!
//! `gtpc`: a GTPv1-C header (3GPP TS 29.060 6: version 1, PT 1, spare 0, the S flag the control
//! plane always sets, any E/PN) or a GTPv2-C header (TS 29.274 5.1: version 2, any P/T/MP, spare bits
//! zero), a message type the control plane defines (TS 29.060 Table 1, TS 29.274 Table 6.1-1),
//! and a length field that counts exactly the bytes after the mandatory header (8 bytes in v1,
//! 4 in v2), or, for a v2 message with the piggyback flag, fewer: the piggybacked message follows.
//! The length is what tells a header from text that starts with the same two bytes ("220 ",
//! "DELETE").
//!
//! Meta: `gtp_version` (1, 2), `gtp_message` ("create-session-request", ...; "type-N" for the
//! rarer ones), `gtp_teid` (the header's tunnel endpoint id, hex; v2 only with the T flag), and
//! from the information elements of the first message, when present: `gtp_cause` (the number),
//! `gtp_apn` (the access point name, labels joined by dots), `gtp_rat` ("eutran", ...),
//! `gtp_serving_network` ("MCC-MNC", v2), and `gtp_fteid`, the tunnel endpoints the message
//! names ("10.1.0.2 teid 0x35529204 s5-s8-sgw-gtp-c", v2's F-TEIDs, inside bearer contexts too;
//! v1's control and data TEIDs with the GSN addresses). The subscriber's identities (IMSI,
//! MSISDN, IMEI) are left out: they name a person and say nothing about the port's use.
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult, MAX_INPUT};
use crate::meta::{json, Meta, Value};
use crate::text::{clean_text, ipv4_text, ipv6_text};

pub static PROBES: &[Probe] =
    &[Probe::single("gtpc", probe)
        .gated(&FIRST_BYTES)
        .answers(answers![
            "gtp_message",
            "gtp_teid",
            "gtp_cause",
            "gtp_fteid",
        ])];

/// Information elements read per message, and endpoints kept, at most (a message has a few
/// dozen; a grouped IE is read one level down).
const MAX_IES: usize = 64;
const MAX_ENDPOINTS: usize = 8;
const APN_LIMIT: usize = 100;

/// v1 with PT and S set (E, PN any); v2 with any of P, T and MP.
const FIRST_BYTES: [u8; 12] = [
    0x32, 0x33, 0x36, 0x37, 0x40, 0x44, 0x48, 0x4c, 0x50, 0x54, 0x58, 0x5c,
];

/// GTPv1-C types: path management, tunnel management, location and mobility management, MBMS,
/// charging (TS 29.060 Table 1; 26, error indication, and 255, the G-PDU, are GTP-U's).
fn v1_type(kind: u8) -> bool {
    matches!(kind, 1..=7 | 16..=23 | 27..=37 | 48..=63 | 70 | 96..=129 | 240 | 241)
}

/// GTPv2-C types of TS 29.274 Table 6.1-1.
fn v2_type(kind: u8) -> bool {
    matches!(
        kind,
        1..=3
            | 32..=41
            | 64..=73
            | 95..=104
            | 128..=141
            | 149..=171
            | 176
            | 177
            | 179
            | 180
            | 200
            | 201
            | 211
            | 212
            | 231..=240
    )
}

fn name(version: u8, kind: u8) -> String {
    let named = match (version, kind) {
        (_, 1) => "echo-request",
        (_, 2) => "echo-response",
        (_, 3) => "version-not-supported",
        (1, 16) => "create-pdp-context-request",
        (1, 17) => "create-pdp-context-response",
        (1, 18) => "update-pdp-context-request",
        (1, 19) => "update-pdp-context-response",
        (1, 20) => "delete-pdp-context-request",
        (1, 21) => "delete-pdp-context-response",
        (2, 32) => "create-session-request",
        (2, 33) => "create-session-response",
        (2, 34) => "modify-bearer-request",
        (2, 35) => "modify-bearer-response",
        (2, 36) => "delete-session-request",
        (2, 37) => "delete-session-response",
        (2, 95) => "create-bearer-request",
        (2, 96) => "create-bearer-response",
        (2, 97) => "update-bearer-request",
        (2, 98) => "update-bearer-response",
        (2, 99) => "delete-bearer-request",
        (2, 100) => "delete-bearer-response",
        (2, 170) => "release-access-bearers-request",
        (2, 171) => "release-access-bearers-response",
        (2, 176) => "downlink-data-notification",
        (2, 177) => "downlink-data-notification-ack",
        _ => return format!("type-{kind}"),
    };
    named.to_string()
}

pub fn probe(data: &[u8], _from_client: bool) -> ProbeResult {
    let ([flags, kind, hi, lo, ..], true) = (data, data.len() >= 8) else {
        return ProbeResult::no();
    };
    let length = usize::from(u16::from_be_bytes([*hi, *lo]));
    // A long datagram the engine cut to its input bound shows less than its length says.
    let cut = data.len() >= MAX_INPUT;
    let version = flags >> 5;
    let fits = match version {
        1 if flags & 0x1a == 0x12 && v1_type(*kind) => {
            let rest = data.len() - 8;
            length == rest || (cut && length > rest)
        }
        2 if flags & 0x03 == 0 && v2_type(*kind) => {
            let rest = data.len() - 4;
            let piggyback = flags & 0x10 != 0;
            length == rest || (piggyback && length < rest) || (cut && length > rest)
        }
        _ => false,
    };
    if !fits {
        return ProbeResult::no();
    }
    let mut meta = Meta::new();
    meta.insert("gtp_version".into(), json!(version));
    meta.insert("gtp_message".into(), json!(name(version, *kind)));
    // The first message's elements: they end at its length, or where the datagram was cut.
    let end = data.len().min(if version == 1 { 8 } else { 4 } + length);
    // The header's TEID: always there in v1, with the T flag in v2.
    let header_teid = || {
        json!(teid_text(u32::from_be_bytes([
            data[4], data[5], data[6], data[7]
        ])))
    };
    let facts = if version == 1 {
        meta.insert("gtp_teid".into(), header_teid());
        // Sequence number, N-PDU number and next extension type follow when any of E, S, PN
        // is set (the control plane always sets S), then the extension headers if E is set.
        let extended = flags & 0x04 != 0 && data.get(11).is_some_and(|&t| t != 0);
        v1_elements(data.get(12..end).unwrap_or_default(), extended)
    } else {
        let start = if flags & 0x08 != 0 {
            meta.insert("gtp_teid".into(), header_teid());
            12
        } else {
            8
        };
        v2_elements(data.get(start..end).unwrap_or_default())
    };
    facts.into_meta(&mut meta);
    ProbeResult::hit(meta)
}

/// What the elements of one message say.
#[derive(Default)]
struct Facts {
    cause: Option<u8>,
    apn: Option<String>,
    rat: Option<&'static str>,
    serving_network: Option<String>,
    endpoints: Vec<String>,
}

impl Facts {
    fn into_meta(self, meta: &mut Meta) {
        if let Some(c) = self.cause {
            meta.insert("gtp_cause".into(), json!(c));
        }
        if let Some(a) = self.apn {
            meta.insert("gtp_apn".into(), json!(a));
        }
        if let Some(r) = self.rat {
            meta.insert("gtp_rat".into(), json!(r));
        }
        if let Some(n) = self.serving_network {
            meta.insert("gtp_serving_network".into(), json!(n));
        }
        if !self.endpoints.is_empty() {
            let list = self.endpoints.into_iter().map(Value::String).collect();
            meta.insert("gtp_fteid".into(), Value::Array(list));
        }
    }

    fn endpoint(&mut self, text: String) {
        if self.endpoints.len() < MAX_ENDPOINTS && !self.endpoints.contains(&text) {
            self.endpoints.push(text);
        }
    }
}

/// GTPv2-C elements (TS 29.274 8.1: type, 16-bit length, spare and instance, value).
fn v2_elements(ies: &[u8]) -> Facts {
    let mut facts = Facts::default();
    v2_walk(ies, &mut facts, true);
    facts
}

fn v2_walk(mut ies: &[u8], facts: &mut Facts, top: bool) {
    for _ in 0..MAX_IES {
        let [kind, hi, lo, _instance, rest @ ..] = ies else {
            return;
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let Some(value) = rest.get(..len) else { return };
        match *kind {
            2 if top => facts.cause = value.first().copied(),
            71 if top => facts.apn = apn(value),
            82 if top => facts.rat = value.first().and_then(|&r| rat(2, r)),
            83 if top => facts.serving_network = plmn(value),
            87 => {
                if let Some(e) = v2_fteid(value) {
                    facts.endpoint(e);
                }
            }
            // A bearer context groups the bearer's elements, its F-TEIDs among them.
            93 if top => v2_walk(value, facts, false),
            _ => {}
        }
        ies = &rest[len..];
    }
}

/// A v2 F-TEID (TS 29.274 8.22): flags V4, V6 and the interface type, the TEID, then the IPv4
/// and/or IPv6 address.
fn v2_fteid(v: &[u8]) -> Option<String> {
    let [flags, a, b, c, d, addrs @ ..] = v else {
        return None;
    };
    let teid = u32::from_be_bytes([*a, *b, *c, *d]);
    let mut hosts = Vec::new();
    let mut addrs = addrs;
    if flags & 0x80 != 0 {
        let (v4, more) = addrs.split_first_chunk::<4>()?;
        hosts.push(ipv4_text(v4));
        addrs = more;
    }
    if flags & 0x40 != 0 {
        let (v6, _) = addrs.split_first_chunk::<16>()?;
        hosts.push(ipv6_text(v6));
    }
    let host = if hosts.is_empty() {
        "-".to_string()
    } else {
        hosts.join(",")
    };
    Some(format!(
        "{host} teid {} {}",
        teid_text(teid),
        interface(flags & 0x3f)
    ))
}

/// F-TEID interface types (TS 29.274 Table 8.22-1), the common ones by name.
fn interface(kind: u8) -> String {
    let named = match kind {
        0 => "s1-u-enodeb-gtp-u",
        1 => "s1-u-sgw-gtp-u",
        2 => "s12-rnc-gtp-u",
        3 => "s12-sgw-gtp-u",
        4 => "s5-s8-sgw-gtp-u",
        5 => "s5-s8-pgw-gtp-u",
        6 => "s5-s8-sgw-gtp-c",
        7 => "s5-s8-pgw-gtp-c",
        10 => "s11-mme-gtp-c",
        11 => "s11-s4-sgw-gtp-c",
        _ => return format!("interface-{kind}"),
    };
    named.to_string()
}

/// GTPv1-C elements (TS 29.060 7.7): type-value elements of fixed length below 128, then
/// type-length-value ones. An unknown TV type ends the walk (its length is not on the wire).
fn v1_elements(after_seq: &[u8], has_extension: bool) -> Facts {
    let mut facts = Facts::default();
    let mut ies = after_seq;
    // Extension headers (TS 29.060 6.1): length in 4-octet units, the last octet names the next.
    let mut next = has_extension;
    for _ in 0..MAX_IES {
        if !next {
            break;
        }
        let Some(&units) = ies.first() else {
            return facts;
        };
        let len = usize::from(units) * 4;
        if len == 0 || ies.len() < len {
            return facts;
        }
        next = ies[len - 1] != 0;
        ies = &ies[len..];
    }
    // (control plane?, TEID)
    let mut teids: Vec<(bool, u32)> = Vec::new();
    let mut gsn: Vec<String> = Vec::new();
    for _ in 0..MAX_IES {
        let Some((&kind, rest)) = ies.split_first() else {
            break;
        };
        let (value, after) = if kind >= 128 {
            let Some((len, body)) = rest.split_first_chunk::<2>() else {
                break;
            };
            let len = usize::from(u16::from_be_bytes(*len));
            let Some(value) = body.get(..len) else { break };
            (value, &body[len..])
        } else {
            let Some(len) = v1_tv_length(kind) else { break };
            let Some(value) = rest.get(..len) else { break };
            (value, &rest[len..])
        };
        match kind {
            1 => facts.cause = value.first().copied(),
            16 | 17 => teids.push((
                kind == 17,
                u32::from_be_bytes(value.try_into().unwrap_or_default()),
            )),
            131 => facts.apn = apn(value),
            133 => match value.len() {
                4 => gsn.push(ipv4_text(value.try_into().unwrap_or(&[0; 4]))),
                16 => gsn.push(ipv6_text(value.try_into().unwrap_or(&[0; 16]))),
                _ => {}
            },
            151 => facts.rat = value.first().and_then(|&r| rat(1, r)),
            _ => {}
        }
        ies = after;
    }
    // The first GSN address is the control plane's, the second the user plane's (TS 29.060
    // 7.3.1); a TEID is named with the address of its plane.
    for (control, teid) in teids {
        let (host, plane) = if control {
            (gsn.first(), "control")
        } else {
            (gsn.get(1).or(gsn.first()), "data")
        };
        let host = host.map_or("-", String::as_str);
        facts.endpoint(format!("{host} teid {} {plane}", teid_text(teid)));
    }
    facts
}

/// A TEID as records spell it: 0x and eight hex digits.
fn teid_text(teid: u32) -> String {
    format!("{teid:#010x}")
}

/// Lengths of the GTPv1 type-value elements (TS 29.060 7.7, Table 37), None for a type the
/// walk cannot step over.
fn v1_tv_length(kind: u8) -> Option<usize> {
    Some(match kind {
        1 | 8 | 11 | 13 | 14 | 15 | 19 | 20 | 21 | 23 | 24 | 29 => 1,
        25..=28 => 2,
        12 => 3,
        4 | 5 | 16 | 17 | 127 => 4,
        18 => 5,
        3 => 6,
        2 => 8,
        22 => 9,
        9 => 28,
        _ => return None,
    })
}

/// An APN in its encoded form (TS 23.003 9.1: length-prefixed labels, as a DNS name) joined by
/// dots; None when the labels do not add up.
fn apn(v: &[u8]) -> Option<String> {
    let mut labels = Vec::new();
    let mut rest = v;
    while let Some((&n, more)) = rest.split_first() {
        let label = more.get(..usize::from(n))?;
        labels.push(label);
        rest = &more[usize::from(n)..];
    }
    (!labels.is_empty()).then(|| clean_text(&labels.join(&b'.'), APN_LIMIT))
}

/// RAT types (v2: TS 29.274 8.17; v1: TS 29.060 7.7.50).
fn rat(version: u8, value: u8) -> Option<&'static str> {
    Some(match (version, value) {
        (_, 1) => "utran",
        (_, 2) => "geran",
        (_, 3) => "wlan",
        (_, 4) => "gan",
        (_, 5) => "hspa-evolution",
        (_, 6) => "eutran",
        (2, 7) => "virtual",
        (2, 8) => "eutran-nb-iot",
        (2, 9) => "lte-m",
        (2, 10) => "nr",
        _ => return None,
    })
}

/// A PLMN as "MCC-MNC" (TS 24.008 10.5.1.13: BCD digits, MCC 1 and 2, MNC 3 and MCC 3, MNC 2
/// and 1; an MNC digit 3 of 0xF means a two-digit MNC).
fn plmn(v: &[u8]) -> Option<String> {
    let [a, b, c, ..] = v else { return None };
    let digit = |d: u8| (d <= 9).then(|| char::from(b'0' + d));
    let mcc = [digit(a & 0x0f)?, digit(a >> 4)?, digit(b & 0x0f)?];
    let mut mnc = vec![digit(c & 0x0f)?, digit(c >> 4)?];
    if b >> 4 != 0x0f {
        mnc.push(digit(b >> 4)?);
    }
    Some(format!(
        "{}-{}",
        mcc.iter().collect::<String>(),
        mnc.iter().collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::vectors::text;
    use crate::detect::probes::Status;

    /// A v1 header with a TEID and the sequence number, N-PDU and next-extension fields.
    fn v1(flags: u8, kind: u8, ies: &[u8]) -> Vec<u8> {
        let mut d = vec![flags, kind];
        d.extend_from_slice(&((ies.len() + 4) as u16).to_be_bytes());
        d.extend_from_slice(&[0, 0, 0, 1, 0x12, 0x34, 0, 0]);
        d.extend_from_slice(ies);
        d
    }

    /// A v2 header with a TEID (T flag) and a sequence number.
    fn v2(flags: u8, kind: u8, ies: &[u8]) -> Vec<u8> {
        let mut d = vec![flags, kind];
        d.extend_from_slice(&((ies.len() + 8) as u16).to_be_bytes());
        d.extend_from_slice(&[0, 0, 0, 1, 0, 0, 7, 0]);
        d.extend_from_slice(ies);
        d
    }

    fn message(data: &[u8]) -> (String, String) {
        let r = probe(data, true);
        assert_eq!(r.status, Status::Match, "{data:02x?}");
        let message = text(&r, "gtp_message").unwrap_or_default();
        (r.meta["gtp_version"].to_string(), message)
    }

    #[test]
    fn control_messages_of_both_versions() {
        assert_eq!(
            message(&v1(0x32, 16, &[0x0e, 0x01])),
            ("1".into(), "create-pdp-context-request".into())
        );
        // E flag: an extension header is announced; PN too.
        assert_eq!(message(&v1(0x37, 1, &[])).1, "echo-request");
        assert_eq!(
            message(&v2(0x48, 32, &[1, 0, 8, 0])),
            ("2".into(), "create-session-request".into())
        );
        assert_eq!(message(&v2(0x4c, 99, &[])).1, "delete-bearer-request");
        assert_eq!(message(&v1(0x32, 50, &[])).1, "type-50");
        // Piggybacking (P flag): a second message follows the first.
        let mut two = v2(0x58, 33, &[2, 0, 2, 0, 16]);
        two.extend_from_slice(&v2(0x48, 96, &[]));
        assert_eq!(message(&two).1, "create-session-response");
    }

    /// A v2 element: type, length, instance 0, value.
    fn ie2(kind: u8, value: &[u8]) -> Vec<u8> {
        let mut e = vec![kind];
        e.extend_from_slice(&(value.len() as u16).to_be_bytes());
        e.push(0);
        e.extend_from_slice(value);
        e
    }

    fn fact(r: &ProbeResult, key: &str) -> Option<String> {
        r.meta.get(key).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    #[test]
    fn a_v2_create_session_names_its_network_and_tunnel_endpoints_not_its_subscriber() {
        // TS 29.274 7.2.1: IMSI, MSISDN, serving network, RAT, the sender's F-TEID, APN, and a
        // bearer context with the user plane's F-TEID.
        let sgw_u = [0x84, 0x35, 0x52, 0x92, 0x05, 10, 101, 0, 2];
        let bearer = [ie2(73, &[5]), ie2(87, &sgw_u)].concat();
        let ies = [
            ie2(1, &[0x89, 0x67, 0x45, 0x11, 0x22, 0x33, 0x44, 0xf5]),
            ie2(76, &[0x21, 0x43, 0x65]),
            ie2(83, &[0x89, 0x47, 0x56]),
            ie2(82, &[6]),
            ie2(87, &[0x86, 0x35, 0x52, 0x92, 0x04, 10, 101, 0, 2]),
            ie2(71, b"\x08internet\x03mnc"),
            ie2(93, &bearer),
        ]
        .concat();
        let r = probe(&v2(0x48, 32, &ies), true);
        assert_eq!(r.status, Status::Match);
        assert_eq!(fact(&r, "gtp_apn").as_deref(), Some("internet.mnc"));
        assert_eq!(fact(&r, "gtp_rat").as_deref(), Some("eutran"));
        assert_eq!(fact(&r, "gtp_serving_network").as_deref(), Some("987-654"));
        assert_eq!(fact(&r, "gtp_teid").as_deref(), Some("0x00000001"));
        assert_eq!(
            r.meta["gtp_fteid"],
            json!([
                "10.101.0.2 teid 0x35529204 s5-s8-sgw-gtp-c",
                "10.101.0.2 teid 0x35529205 s5-s8-sgw-gtp-u"
            ])
        );
        let text = serde_json::to_string(&r.meta).unwrap();
        assert!(
            !text.contains("896745") && !text.contains("214365"),
            "{text}"
        );
        // A three-digit MNC (digit 3 not 0xF); an IPv6 F-TEID; a response's cause.
        let mut v6 = vec![0x41, 0, 0, 0, 9];
        v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let ies = [ie2(2, &[16, 0]), ie2(83, &[0x21, 0x63, 0x54]), ie2(87, &v6)].concat();
        let r = probe(&v2(0x48, 33, &ies), false);
        assert_eq!(fact(&r, "gtp_cause").as_deref(), Some("16"));
        assert_eq!(fact(&r, "gtp_serving_network").as_deref(), Some("123-456"));
        assert_eq!(
            r.meta["gtp_fteid"],
            json!(["2001:db8::1 teid 0x00000009 s1-u-sgw-gtp-u"])
        );
    }

    #[test]
    fn a_v1_create_pdp_context_names_apn_rat_and_its_gsn_endpoints() {
        // TS 29.060 7.3.1: IMSI (TV 8), RAI (TV 6), selection mode, the data and control
        // TEIDs, NSAPI, end user address, APN, the control and user GSN addresses, MSISDN,
        // QoS, RAT type.
        let mut ies = vec![2, 0x21, 0x43, 0x65, 0x87, 0x09, 0x21, 0x43, 0xf5];
        ies.extend_from_slice(&[3, 0x21, 0xf3, 0x54, 0, 1, 2]);
        ies.extend_from_slice(&[15, 0xfc, 16, 0, 0, 0, 0x11, 17, 0, 0, 0, 0x22, 20, 5]);
        ies.extend_from_slice(&[128, 0, 2, 0xf1, 0x21]);
        ies.extend_from_slice(&[131, 0, 9, 8, b'i', b'n', b't', b'e', b'r', b'n', b'e', b't']);
        ies.extend_from_slice(&[133, 0, 4, 192, 0, 2, 1, 133, 0, 4, 192, 0, 2, 2]);
        ies.extend_from_slice(&[134, 0, 3, 0x91, 0x21, 0x43]);
        ies.extend_from_slice(&[135, 0, 4, 1, 2, 3, 4, 151, 0, 1, 1]);
        let r = probe(&v1(0x32, 16, &ies), true);
        assert_eq!(r.status, Status::Match);
        assert_eq!(fact(&r, "gtp_apn").as_deref(), Some("internet"));
        assert_eq!(fact(&r, "gtp_rat").as_deref(), Some("utran"));
        assert_eq!(fact(&r, "gtp_teid").as_deref(), Some("0x00000001"));
        assert_eq!(
            r.meta["gtp_fteid"],
            json!([
                "192.0.2.2 teid 0x00000011 data",
                "192.0.2.1 teid 0x00000022 control"
            ])
        );
        let text = serde_json::to_string(&r.meta).unwrap();
        assert!(!text.contains("214365") && !text.contains("9121"), "{text}");
        // An element whose length the walk cannot know ends it: what came before stays.
        let mut unknown = vec![1, 128, 14, 3, 99, 7];
        unknown.extend_from_slice(&[131, 0, 4, 3, b'a', b'p', b'n']);
        let r = probe(&v1(0x32, 17, &unknown), false);
        assert_eq!(fact(&r, "gtp_cause").as_deref(), Some("128"));
        assert_eq!(fact(&r, "gtp_apn"), None);
        // E set: an extension header (one 4-octet unit, next type 0) comes before the elements.
        let mut d = v1(0x36, 16, &[1, 0xaa, 0xbb, 0, 131, 0, 2, 1, b'x']);
        d[11] = 0xc0;
        assert_eq!(fact(&probe(&d, true), "gtp_apn").as_deref(), Some("x"));
    }

    #[test]
    fn element_lengths_past_the_message_are_not_read() {
        let base = v2(0x48, 32, &[]);
        for ies in [
            ie2(71, b"\x08internet")[..6].to_vec(),
            [ie2(82, &[6]), vec![87, 0xff, 0xff, 0, 0x80]].concat(),
            ie2(87, &[0xc6, 0, 0, 0, 1, 10, 0, 0]),
            ie2(71, b"\x09internet"),
            ie2(83, &[0xff, 0xff]),
        ] {
            let mut d = base.clone();
            d.extend_from_slice(&ies);
            let len = (d.len() - 4) as u16;
            d[2..4].copy_from_slice(&len.to_be_bytes());
            let r = probe(&d, true);
            assert_eq!(r.status, Status::Match, "{ies:02x?}");
            for key in ["gtp_apn", "gtp_fteid", "gtp_serving_network"] {
                assert_eq!(fact(&r, key), None, "{key} {ies:02x?}");
            }
        }
        // Without the T flag the elements start right after the sequence number.
        let d = [&[0x40, 1, 0, 9, 0, 0, 1, 0][..], &ie2(3, &[7])].concat();
        let r = probe(&d, true);
        assert_eq!((r.status, fact(&r, "gtp_teid")), (Status::Match, None));
    }

    #[test]
    fn text_and_other_headers_are_not_gtp_control() {
        for data in [
            &b"220 mail.example.test ESMTP\r\n"[..],
            b"DELETE /x HTTP/1.1\r\n\r\n",
            b"23 bottles of beer",
        ] {
            assert_eq!(probe(data, true).status, Status::No, "{data:?}");
        }
        let ok = v1(0x32, 16, &[0x0e, 0x01]);
        // The length one off either way; S clear (GTP-U's echo form); a G-PDU; GTP' (PT 0).
        assert_eq!(probe(&ok[..ok.len() - 1], true).status, Status::No);
        assert_eq!(probe(&[&ok[..], &[0]].concat(), true).status, Status::No);
        assert_eq!(probe(&v1(0x30, 1, &[]), true).status, Status::No);
        assert_eq!(probe(&v1(0x32, 255, &[]), true).status, Status::No);
        assert_eq!(probe(&v1(0x22, 1, &[]), true).status, Status::No);
        // v2: spare bits set; a longer datagram without the P flag; an unassigned type.
        assert_eq!(probe(&v2(0x49, 32, &[]), true).status, Status::No);
        assert_eq!(
            probe(&[&v2(0x48, 32, &[])[..], &[0; 4]].concat(), true).status,
            Status::No
        );
        assert_eq!(probe(&v2(0x48, 50, &[]), true).status, Status::No);
        assert_eq!(probe(&[0x32, 1, 0], true).status, Status::No);
    }
}
