//! RADIUS (RFC 2865 authentication, RFC 2866 accounting, RFC 5176 dynamic authorization).
//!
//! A packet is a code, an identifier, a length, a 16-byte authenticator and attributes
//! (type, length of at least 2, value) that tile the packet up to its length exactly
//! (RFC 2865 5). The length is 20..=4096 and is the datagram's. RFC 2865 3 lets a receiver
//! ignore bytes past the length as padding, but FreeRADIUS and radclient send none, and nDPI
//! also takes only a length equal to the datagram's. Allowing padding named one random
//! datagram in ~200,000 RADIUS (a length short of the datagram's where random attributes
//! happened to tile). Attribute type 0 is not defined.
//!
//! Who sends what: a NAS sends Access-Request, Accounting-Request and Status-Server to the
//! server, which answers; a dynamic authorization client (the server's side, RFC 5176) sends
//! Disconnect- and CoA-Request to the NAS, which answers. So either side may send requests and
//! replies of some kind, and the probe does not tie codes to a direction.
//!
//! Meta: `radius_request` ("access-request", "accounting-request", "coa-request"...) or
//! `radius_reply` ("access-accept", "access-reject", "accounting-response"...), whichever the
//! packet is, and `radius_user_name`, its User-Name attribute (1), as text.
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};
use crate::text::clean_text;

pub static PROBES: &[Probe] = &[Probe::single("radius", probe).gated(&GATE)];

/// Each code RADIUS defines (RFC 2865 3, 2866 3, 5176 2.3): its name, and whether it is a
/// request (the rest are replies).
const CODES: [(u8, &str, bool); 14] = [
    (1, "access-request", true),
    (2, "access-accept", false),
    (3, "access-reject", false),
    (4, "accounting-request", true),
    (5, "accounting-response", false),
    (11, "access-challenge", false),
    (12, "status-server", true),
    (13, "status-client", true),
    (40, "disconnect-request", true),
    (41, "disconnect-ack", false),
    (42, "disconnect-nak", false),
    (43, "coa-request", true),
    (44, "coa-ack", false),
    (45, "coa-nak", false),
];
/// The codes, for the engine's first-byte gate.
const GATE: [u8; CODES.len()] = {
    let mut gate = [0u8; CODES.len()];
    let mut i = 0;
    while i < CODES.len() {
        gate[i] = CODES[i].0;
        i += 1;
    }
    gate
};
const HEADER: usize = 20;
const MAX_LENGTH: usize = 4096;
const USER_NAME: u8 = 1;
/// RFC 2865 5.1: the User-Name is at most 253 octets, as any attribute value.
const USER_NAME_LIMIT: usize = 253;

/// The code's name and whether it is a request.
fn code_of(code: u8) -> Option<(&'static str, bool)> {
    CODES
        .iter()
        .find(|c| c.0 == code)
        .map(|&(_, name, request)| (name, request))
}

/// The attributes of `body` (after the header), if they tile it exactly: the User-Name's value
/// if there is one.
fn attributes(body: &[u8]) -> Option<Option<&[u8]>> {
    let (mut off, mut user) = (0usize, None);
    while off < body.len() {
        let (&kind, &len) = (body.get(off)?, body.get(off + 1)?);
        let len = usize::from(len);
        if kind == 0 || len < 2 {
            return None;
        }
        let value = body.get(off + 2..off + len)?;
        if kind == USER_NAME && user.is_none() {
            user = Some(value);
        }
        off += len;
    }
    Some(user)
}

pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    let Some(&[code, _id, hi, lo]) = data.get(..4) else {
        return ProbeResult::no();
    };
    // RFC 2865 2, RFC 5176 2: a request comes from the client (a NAS, or the Dynamic Authorization
    // Client sending a CoA or Disconnect), its answer from the server.
    let Some((name, request)) = code_of(code).filter(|&(_, request)| request == from_client) else {
        return ProbeResult::no();
    };
    let length = usize::from(u16::from_be_bytes([hi, lo]));
    if !(HEADER..=MAX_LENGTH).contains(&length) || length != data.len() {
        return ProbeResult::no();
    }
    let Some(user) = attributes(&data[HEADER..length]) else {
        return ProbeResult::no();
    };
    let mut meta = Meta::new();
    let key = if request {
        "radius_request"
    } else {
        "radius_reply"
    };
    meta.insert(key.into(), json!(name));
    if let Some(user) = user.filter(|u| !u.is_empty()) {
        meta.insert(
            "radius_user_name".into(),
            json!(clean_text(user, USER_NAME_LIMIT)),
        );
    }
    ProbeResult::hit_done(meta, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    fn packet(code: u8, attrs: &[(u8, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (kind, value) in attrs {
            body.push(*kind);
            body.push(value.len() as u8 + 2);
            body.extend_from_slice(value);
        }
        let mut p = vec![code, 0x2a];
        p.extend_from_slice(&((HEADER + body.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0x5c; 16]);
        p.extend_from_slice(&body);
        p
    }

    /// An Access-Request as RFC 2865 7.1 shows it: User-Name "nemo", User-Password (16 octets
    /// hidden), NAS-IP-Address 192.168.1.16, NAS-Port 3.
    fn access_request() -> Vec<u8> {
        packet(
            1,
            &[
                (1, b"nemo"),
                (2, &[0xa7; 16]),
                (4, &[192, 168, 1, 16]),
                (5, &[0, 0, 0, 3]),
            ],
        )
    }

    #[test]
    fn requests_and_replies() {
        let r = probe(&access_request(), true);
        assert_eq!(r.meta["radius_request"], "access-request");
        assert_eq!(r.meta["radius_user_name"], "nemo");
        assert!(r.done);
        // An Accounting-Response carries no attributes; a reply of either side is named.
        let r = probe(&packet(5, &[]), false);
        assert_eq!(r.meta["radius_reply"], "accounting-response");
        assert!(!r.meta.contains_key("radius_user_name"));
        assert!(!r.meta.contains_key("radius_request"));
        assert_eq!(
            probe(&packet(43, &[(1, b"nemo")]), true).meta["radius_request"],
            "coa-request"
        );
        // Requests from the client side, answers from the server's.
        assert_eq!(probe(&access_request(), false).status, Status::No);
        assert_eq!(probe(&packet(5, &[]), true).status, Status::No);
        // Bytes past the length (padding, RFC 2865 3) are not taken: see the module docs.
        let mut padded = access_request();
        padded.extend_from_slice(&[0; 7]);
        assert_eq!(probe(&padded, true).status, Status::No);
        // A user name with control bytes is escaped.
        let r = probe(&packet(1, &[(1, b"a\x1b[2Jb")]), true);
        assert_eq!(r.meta["radius_user_name"], "a\\x1b[2Jb");
    }

    #[test]
    fn what_a_packet_may_not_hold() {
        let good = access_request();
        let mut p = good.clone();
        p[0] = 6;
        assert_eq!(probe(&p, true).status, Status::No, "code 6");
        assert_eq!(
            probe(&good[..good.len() - 1], true).status,
            Status::No,
            "shorter than its length"
        );
        let mut p = good.clone();
        p[3] += 1;
        p.push(0);
        assert_eq!(probe(&p, true).status, Status::No, "a stray byte");
        let mut p = good.clone();
        p[HEADER] = 0;
        assert_eq!(probe(&p, true).status, Status::No, "attribute type 0");
        let mut p = good.clone();
        p[HEADER + 1] = 1;
        assert_eq!(probe(&p, true).status, Status::No, "attribute length 1");
        let mut p = good.clone();
        p[HEADER + 1] = 60;
        assert_eq!(probe(&p, true).status, Status::No, "past the packet");
        let mut p = packet(2, &[]);
        p[3] = 19;
        assert_eq!(probe(&p, false).status, Status::No, "length 19");
        let mut big = packet(4, &[]);
        big[2..4].copy_from_slice(&4097u16.to_be_bytes());
        big.resize(4097, 0);
        assert_eq!(probe(&big, true).status, Status::No, "length 4097");
    }

    #[test]
    fn no_panic_on_hostile_shapes() {
        for n in 0..48 {
            for fill in [0u8, 1, 2, 0x14, 0xff] {
                let mut v = vec![fill; n];
                if n > 3 {
                    v[0] = 1;
                    v[2] = 0;
                    v[3] = n as u8;
                }
                let _ = probe(&v, true);
            }
        }
    }

    #[test]
    fn gate_is_necessary() {
        for code in 0..=255u8 {
            assert_eq!(code_of(code).is_some(), GATE.contains(&code), "{code}");
        }
    }
}
