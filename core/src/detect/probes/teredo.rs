//! Teredo (RFC 4380): IPv6 carried in UDP, optionally behind authentication and origin
//! indicators.
//!
//! `teredo`: one datagram. An authentication indicator (0x0001, id length, auth length, 8-byte
//! nonce, confirmation byte) and/or an origin indication (0x0000, obfuscated port and address, 8
//! bytes) may precede an IPv6 header whose version is 6 and whose payload length plus 40 is
//! exactly what remains. A bare authentication indicator (a qualification bubble) also matches.
//!
//! Meta: `teredo_inner` (the inner next-header number: 58 ICMPv6, 59 none, 6, 17...; the string
//! "none" for a bare authentication indicator).
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta, Value};

pub static PROBES: &[Probe] = &[Probe::single("teredo", probe)];

const AUTH_INDICATOR: &[u8] = &[0x00, 0x01];
const ORIGIN_INDICATION: &[u8] = &[0x00, 0x00];
const ORIGIN_LEN: usize = 8;
const IPV6_HEADER: usize = 40;

fn hit(inner: Value) -> ProbeResult {
    let mut meta = Meta::new();
    meta.insert("teredo_inner".into(), inner);
    ProbeResult::hit(meta)
}

pub fn probe(data: &[u8], _from_client: bool) -> ProbeResult {
    let mut off = 0usize;
    if data.starts_with(AUTH_INDICATOR) {
        if data.len() < 13 {
            return ProbeResult::no();
        }
        // Indicator type and lengths, client id, authentication value, nonce, confirmation.
        off = 4 + usize::from(data[2]) + usize::from(data[3]) + 9;
        if off == data.len() {
            return hit(json!("none"));
        }
    }
    if data
        .get(off..)
        .is_some_and(|rest| rest.starts_with(ORIGIN_INDICATION))
    {
        off += ORIGIN_LEN;
    }
    let Some(ip) = data.get(off..off + IPV6_HEADER) else {
        return ProbeResult::no();
    };
    if ip[0] >> 4 != 6 {
        return ProbeResult::no();
    }
    let (plen, next) = (usize::from(u16::from_be_bytes([ip[4], ip[5]])), ip[6]);
    if off + IPV6_HEADER + plen != data.len() {
        return ProbeResult::no();
    }
    hit(json!(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("teredo");
    }

    #[test]
    fn no_panic_on_hostile_shapes() {
        crate::detect::probes::vectors::never_panics("teredo");
    }

    /// An IPv6 header carrying `payload` bytes of next header `next` (RFC 8200 3).
    fn ipv6(next: u8, payload: usize) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(payload as u16).to_be_bytes());
        p.extend_from_slice(&[next, 255]);
        p.extend_from_slice(&[0xfe, 0x80]);
        p.extend_from_slice(&[0u8; 14]);
        p.extend_from_slice(&[0x20, 0x01, 0, 0]);
        p.extend_from_slice(&[0u8; 12]);
        p.resize(40 + payload, 0);
        p
    }

    #[test]
    fn bubble_and_router_solicitation() {
        // A bubble: an IPv6 header with no next header (59) and no payload.
        assert_eq!(
            probe(&ipv6(59, 0), true).meta,
            json!({"teredo_inner": 59}).as_object().cloned().unwrap()
        );
        // RFC 4380 5.2.1: a router solicitation behind an authentication indicator (no id, no
        // auth value, nonce, confirmation 0) and an origin indication.
        let mut p = vec![0, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0];
        p.extend_from_slice(&[0, 0, 0x3f, 0xd4, 0x3f, 0xff, 0xfd, 0xfe]);
        p.extend_from_slice(&ipv6(58, 8));
        assert_eq!(probe(&p, false).meta["teredo_inner"], 58);
        // The bare authentication indicator of a qualification.
        assert_eq!(probe(&p[..13], true).meta["teredo_inner"], "none");
        assert_eq!(probe(&p[..p.len() - 1], false).status, Status::No);
    }
}
