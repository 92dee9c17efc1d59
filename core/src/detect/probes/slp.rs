//! The Service Location Protocol over UDP: version 1 (RFC 2165 7) and 2 (RFC 2608 8).
//!
//! Both headers carry the message's length, which for a datagram is the datagram's length: that
//! equality, the version and a defined function carry the match (one random datagram in
//! ~4x10^8 for version 1, ~10^11 for version 2), as nDPI's dissector takes them, so a multicast
//! query or a reflected reply is named whatever its ports. Version 2's header also tells the length of
//! the language tag that ends it, which must fit.
//!
//! Meta: `slp_function` ("srvrqst", "attrrply", "daadvert"...) and `slp_version`.
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[Probe::single("slp", probe)
    .gated(&[1, 2])
    .answers(answers!["slp_function"])];

const V1_HEADER: usize = 12;
/// Version 2's fixed header, before the language tag.
const V2_HEADER: usize = 14;

fn function_name(function: u8, version: u8) -> Option<&'static str> {
    Some(match function {
        1 => "srvrqst",
        2 => "srvrply",
        3 => "srvreg",
        4 => "srvdereg",
        5 => "srvack",
        6 => "attrrqst",
        7 => "attrrply",
        8 => "daadvert",
        9 => "srvtyperqst",
        10 => "srvtyperply",
        11 if version == 2 => "saadvert",
        _ => return None,
    })
}

/// Who sends a function (RFC 2608 8, RFC 2165 7): a request, registration or deregistration
/// comes from the client side, a reply or acknowledgement from the server's; an advertisement
/// (DAAdvert, SAAdvert) is sent unasked to the group or in answer, so from either.
fn function_fits_side(function: u8, from_client: bool) -> bool {
    match function {
        1 | 3 | 4 | 6 | 9 => from_client,
        2 | 5 | 7 | 10 => !from_client,
        _ => true,
    }
}

pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    let Some(&[version, function]) = data.get(..2) else {
        return ProbeResult::no();
    };
    let Some(name) = function_name(function, version) else {
        return ProbeResult::no();
    };
    if !function_fits_side(function, from_client) {
        return ProbeResult::no();
    }
    let fits = match version {
        1 => data.get(2..4).is_some_and(|l| {
            let length = usize::from(u16::from_be_bytes([l[0], l[1]]));
            length == data.len() && length >= V1_HEADER
        }),
        2 => data.get(..V2_HEADER).is_some_and(|h| {
            let length = usize::from(h[2]) << 16 | usize::from(h[3]) << 8 | usize::from(h[4]);
            let tag = usize::from(u16::from_be_bytes([h[12], h[13]]));
            length == data.len() && V2_HEADER + tag <= length
        }),
        _ => false,
    };
    if !fits {
        return ProbeResult::no();
    }
    let mut meta = Meta::new();
    meta.insert("slp_function".into(), json!(name));
    meta.insert("slp_version".into(), json!(version));
    ProbeResult::hit_done(meta, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    /// A version 2 SrvRqst for `service:printer` in language "en" (RFC 2608 8.1).
    fn srvrqst_v2() -> Vec<u8> {
        let mut body = Vec::new();
        for field in [&b""[..], b"service:printer", b"default", b"", b""] {
            body.extend_from_slice(&(field.len() as u16).to_be_bytes());
            body.extend_from_slice(field);
        }
        let length = V2_HEADER + 2 + body.len();
        let mut m = vec![2, 1, 0, (length >> 8) as u8, length as u8, 0x20, 0];
        m.extend_from_slice(&[0, 0, 0, 0x1d, 0x79, 0, 2]);
        m.extend_from_slice(b"en");
        m.extend_from_slice(&body);
        m
    }

    /// A version 1 AttrRqst: flags, dialect, "en", encoding 3 (US-ASCII), XID, then its body.
    fn attrrqst_v1() -> Vec<u8> {
        let body = b"\x00\x00\x00\x1cservice:printer://host/queue\x00\x07default";
        let length = V1_HEADER + body.len();
        let mut m = vec![1, 6, (length >> 8) as u8, length as u8, 0, 0];
        m.extend_from_slice(b"en");
        m.extend_from_slice(&[0, 3, 0x1e, 0xf7]);
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn both_versions() {
        let r = probe(&srvrqst_v2(), true);
        assert_eq!(r.meta["slp_function"], "srvrqst");
        assert_eq!(r.meta["slp_version"], 2);
        let r = probe(&attrrqst_v1(), true);
        assert_eq!(r.meta["slp_function"], "attrrqst");
        assert_eq!(r.meta["slp_version"], 1);
        // A request only from the client side; a reply (function 2) only from the server's; a
        // DAAdvert (8) from either.
        assert_eq!(probe(&srvrqst_v2(), false).status, Status::No);
        let mut reply = srvrqst_v2();
        reply[1] = 2;
        assert_eq!(probe(&reply, false).meta["slp_function"], "srvrply");
        assert_eq!(probe(&reply, true).status, Status::No);
        let mut advert = srvrqst_v2();
        advert[1] = 8;
        assert!(probe(&advert, true).is_match() && probe(&advert, false).is_match());
    }

    #[test]
    fn what_a_header_may_not_hold() {
        let v2 = srvrqst_v2();
        assert_eq!(probe(&v2[..v2.len() - 1], true).status, Status::No, "short");
        assert_eq!(
            probe(&[&v2[..], b"x"].concat(), true).status,
            Status::No,
            "long"
        );
        let mut m = v2.clone();
        m[1] = 12;
        assert_eq!(probe(&m, true).status, Status::No, "function 12");
        let mut m = v2.clone();
        m[13] = 60;
        assert_eq!(probe(&m, true).status, Status::No, "a tag past the end");
        let mut m = attrrqst_v1();
        m[1] = 11;
        assert_eq!(
            probe(&m, true).status,
            Status::No,
            "SAAdvert is version 2's"
        );
        let mut m = attrrqst_v1();
        m[0] = 3;
        assert_eq!(probe(&m, true).status, Status::No, "version 3");
        assert_eq!(probe(&[1, 1, 0, 4], true).status, Status::No, "no header");
    }

    #[test]
    fn no_panic_on_hostile_shapes() {
        for n in 0..40 {
            for fill in [0u8, 1, 2, 0xff] {
                let mut v = vec![fill; n];
                if n > 4 {
                    v[0] = 2;
                    v[4] = n as u8;
                }
                let _ = probe(&v, true);
            }
        }
    }
}
