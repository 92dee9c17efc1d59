//! IPsec key exchange: ISAKMP/IKEv1 (RFC 2408) and IKEv2 (RFC 7296), on UDP 500 or NAT-T 4500;
//! and ESP in UDP (RFC 3948).
//!
//! `ike`: one datagram. On NAT-T the IKE message follows a 4-byte zero non-ESP marker; a one-byte
//! 0xFF NAT keepalive also matches. The 28-byte header must have a non-zero initiator SPI, a major
//! version 1 or 2 with the exchange types of that version, and a length equal to the message.
//! `esp_udp` (units): one SPI with a sequence number that grows across datagrams.
//!
//! Meta: `ike_version` (1, 2), `ike_exchange` ("main", "aggressive", "ike_sa_init"...),
//! `ike_keepalive` (true); `esp_spi` (hex).
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[
    Probe::single("ike", probe),
    Probe::units("esp_udp", probe_esp_units),
];

const HEADER: usize = 28;
const NON_ESP_MARKER: &[u8] = &[0, 0, 0, 0];
/// Datagrams of a direction the ESP probe looks at.
const MAX_UNITS: usize = 8;
/// The largest forward step of the ESP sequence number between two datagrams seen.
const MAX_STEP: u32 = 64;
/// SPI, sequence number, and at least an IV and an ICV's worth of payload.
const MIN_ESP: usize = 24;

fn v1_exchange(x: u8) -> Option<&'static str> {
    Some(match x {
        1 => "base",
        2 => "identity-protection",
        4 => "aggressive",
        5 => "informational",
        32 => "quick",
        33 => "new-group",
        _ => return None,
    })
}

fn v2_exchange(x: u8) -> Option<&'static str> {
    Some(match x {
        34 => "ike_sa_init",
        35 => "ike_auth",
        36 => "create_child_sa",
        37 => "informational",
        _ => return None,
    })
}

/// Version and exchange name of the ISAKMP header that spans exactly `data`.
fn parse_ike(data: &[u8]) -> Option<(u8, &'static str)> {
    let head = data.get(..HEADER)?;
    let (ispi, nxt, version, exchange, flags) =
        (&head[..8], head[16], head[17], head[18], head[19]);
    let length = u32::from_be_bytes([head[24], head[25], head[26], head[27]]);
    if ispi == [0u8; 8] || usize::try_from(length).ok()? != data.len() {
        return None;
    }
    match version >> 4 {
        1 if nxt <= 20 && flags & 0xF8 == 0 => Some((1, v1_exchange(exchange)?)),
        2 if (nxt == 0 || (33..=53).contains(&nxt)) && flags & 0xC7 == 0 => {
            Some((2, v2_exchange(exchange)?))
        }
        _ => None,
    }
}

pub fn probe(data: &[u8], _from_client: bool) -> ProbeResult {
    let mut meta = Meta::new();
    if data == [0xFF] {
        meta.insert("ike_keepalive".into(), json!(true));
        return ProbeResult::hit(meta);
    }
    let message = data.strip_prefix(NON_ESP_MARKER).unwrap_or(data);
    let Some((version, exchange)) = parse_ike(message) else {
        return ProbeResult::no();
    };
    meta.insert("ike_version".into(), json!(version));
    meta.insert("ike_exchange".into(), json!(exchange));
    ProbeResult::hit(meta)
}

pub fn probe_esp_units(units: &[&[u8]], _from_client: bool) -> ProbeResult {
    let heads: Vec<(u32, u32)> = units
        .iter()
        .take(MAX_UNITS)
        .filter(|u| u.len() >= MIN_ESP && !u.starts_with(NON_ESP_MARKER))
        .map(|u| {
            (
                u32::from_be_bytes([u[0], u[1], u[2], u[3]]),
                u32::from_be_bytes([u[4], u[5], u[6], u[7]]),
            )
        })
        .collect();
    for pair in heads.windows(2) {
        let ((spi_a, seq_a), (spi_b, seq_b)) = (pair[0], pair[1]);
        // No wrap-around: ESP sequence numbers never cycle within one SA.
        if spi_a == spi_b && seq_b > seq_a && seq_b - seq_a <= MAX_STEP {
            let mut meta = Meta::new();
            meta.insert("esp_spi".into(), json!(format!("{spi_a:08x}")));
            return ProbeResult::hit(meta);
        }
    }
    ProbeResult::no()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    #[test]
    fn python_vectors() {
        for name in ["ike", "esp_udp"] {
            crate::detect::probes::vectors::replay(name);
        }
    }

    #[test]
    fn no_panic_on_hostile_shapes() {
        for name in ["ike", "esp_udp"] {
            crate::detect::probes::vectors::never_panics(name);
        }
    }

    /// An IKEv2 IKE_SA_INIT request header (RFC 7296 3.1): initiator SPI, zero responder SPI,
    /// next payload SA (33), version 2.0, exchange 34, flags Initiator, message id 0, then an
    /// empty-ish SA payload to reach `total` bytes.
    fn ike_sa_init(total: u32) -> Vec<u8> {
        let mut p = vec![0x86, 0x43, 0x30, 0xac, 0x30, 0xe6, 0x56, 0x4d];
        p.extend_from_slice(&[0u8; 8]);
        p.extend_from_slice(&[33, 0x20, 34, 0x08, 0, 0, 0, 0]);
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 0]);
        p
    }

    #[test]
    fn ikev2_and_nat_t() {
        let p = ike_sa_init(36);
        assert_eq!(
            probe(&p, true).meta,
            json!({"ike_version": 2, "ike_exchange": "ike_sa_init"})
                .as_object()
                .cloned()
                .unwrap()
        );
        // Behind the non-ESP marker on 4500.
        let mut natt = vec![0, 0, 0, 0];
        natt.extend_from_slice(&p);
        assert_eq!(probe(&natt, true).status, Status::Match);
        // The length field must be the message's.
        assert_eq!(probe(&ike_sa_init(40), true).status, Status::No);
        assert_eq!(
            probe(&[0xff], true).meta,
            json!({"ike_keepalive": true}).as_object().cloned().unwrap()
        );
    }

    #[test]
    fn ikev1_main_mode() {
        // ISAKMP (RFC 2408 3.1): next payload SA (1), version 1.0, Identity Protection (2).
        let mut p = vec![0x11; 8];
        p.extend_from_slice(&[0u8; 8]);
        p.extend_from_slice(&[1, 0x10, 2, 0, 0, 0, 0, 0, 0, 0, 0, 28]);
        assert_eq!(
            probe(&p, true).meta,
            json!({"ike_version": 1, "ike_exchange": "identity-protection"})
                .as_object()
                .cloned()
                .unwrap()
        );
    }

    #[test]
    fn esp_sequence_grows() {
        let esp = |seq: u32| {
            let mut p = vec![0xc0, 0x01, 0x02, 0x03];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&[0x5c; 64]);
            p
        };
        let (a, b, c) = (esp(1), esp(2), esp(1));
        assert_eq!(probe_esp_units(&[&a, &b], true).meta["esp_spi"], "c0010203");
        assert_eq!(probe_esp_units(&[&b, &c], true).status, Status::No);
        assert_eq!(probe_esp_units(&[&a], true).status, Status::No);
    }
}
