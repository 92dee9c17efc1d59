//! RDP over UDP (MS-RDPEUDP): the SYN and SYN+ACK datagrams that open every RDP-UDP
//! connection, including those that go on as MS-RDPEUDP2 (its version 3 is negotiated in the
//! same SYN exchange, 2.2.2.9) and those whose payload then turns to DTLS.
//!
//! Both datagrams are an RDPUDP_FEC_HEADER (2.2.2.1: snSourceAck, uReceiveWindowSize, uFlags),
//! an RDPUDP_SYNDATA_PAYLOAD (2.2.2.5: snInitialSequenceNumber, uUpStreamMtu, uDownStreamMtu),
//! optionally an RDPUDP_CORRELATION_ID_PAYLOAD (2.2.2.8) and an RDPUDP_SYNDATAEX_PAYLOAD
//! (2.2.2.9), zero-padded to 1232 bytes (3.1.5.1.1), all in network byte order.
//! - client SYN: snSourceAck = -1, RDPUDP_FLAG_SYN without ACK;
//! - server SYN+ACK: RDPUDP_FLAG_SYN and RDPUDP_FLAG_ACK (snSourceAck echoes the client's
//!   initial sequence number, so it is not checked);
//! - both: each MTU in 1132..=1232, no flag outside the defined set, no DATA or FIN, and a
//!   known uUdpVer when RDPUDP_FLAG_SYNEX announces one. The padding is not checked (the spec
//!   does not say what it holds).
//!
//! Meta: `rdp_udp_version` (1, 2 or 3 from uUdpVer; 1 when no SYNDATAEX payload says otherwise;
//! 3 is RDP-UDP2).
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[Probe::single("rdpeudp", probe)];

/// Every SYN and SYN+ACK datagram is padded to exactly this size (3.1.5.1.1, 3.1.5.1.2).
pub const SYN_DATAGRAM: usize = 1232;
const MTU_MIN: u16 = 1132;
const MTU_MAX: u16 = 1232;

const FLAG_SYN: u16 = 0x0001;
const FLAG_FIN: u16 = 0x0002;
const FLAG_ACK: u16 = 0x0004;
const FLAG_DATA: u16 = 0x0008;
const FLAG_CORRELATION_ID: u16 = 0x0800;
const FLAG_SYNEX: u16 = 0x1000;
/// RDPUDP_FLAG_SYN .. RDPUDP_FLAG_SYNEX (2.2.2.1).
const FLAGS_DEFINED: u16 = 0x1FFF;

/// FEC header (8) + SYNDATA payload (8).
const SYNDATA_END: usize = 16;
/// uCorrelationId (16) + reserved (16).
const CORRELATION_LEN: usize = 32;
/// uUdpVer values (2.2.2.9) and the version number each stands for.
const UDP_VERSIONS: [(u16, u8); 3] = [(0x0001, 1), (0x0002, 2), (0x0101, 3)];

fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]))
}

pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    if data.len() != SYN_DATAGRAM {
        return ProbeResult::no();
    }
    let (Some(flags), Some(up), Some(down)) = (be16(data, 6), be16(data, 12), be16(data, 14))
    else {
        return ProbeResult::no();
    };
    let shape_ok = flags & FLAG_SYN != 0
        && flags & !FLAGS_DEFINED == 0
        && flags & (FLAG_DATA | FLAG_FIN) == 0
        && (MTU_MIN..=MTU_MAX).contains(&up)
        && (MTU_MIN..=MTU_MAX).contains(&down);
    let side_ok = if from_client {
        data.get(..4) == Some(&[0xFF; 4][..]) && flags & FLAG_ACK == 0
    } else {
        flags & FLAG_ACK != 0
    };
    if !shape_ok || !side_ok {
        return ProbeResult::no();
    }
    let mut at = SYNDATA_END;
    if flags & FLAG_CORRELATION_ID != 0 {
        at += CORRELATION_LEN;
    }
    let mut version = 1u8;
    if flags & FLAG_SYNEX != 0 {
        let Some(raw) = be16(data, at + 2) else {
            return ProbeResult::no();
        };
        let Some(&(_, v)) = UDP_VERSIONS.iter().find(|(r, _)| *r == raw) else {
            return ProbeResult::no();
        };
        version = v;
    }
    let mut meta = Meta::new();
    meta.insert("rdp_udp_version".into(), json!(version));
    ProbeResult::hit_done(meta, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    /// A SYN (client) or SYN+ACK (server) datagram as MS-RDPEUDP 3.1.5.1.1/3.1.5.1.2 build it.
    fn syn(client: bool, flags: u16, mtus: (u16, u16), tail: &[u8]) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(if client {
            &[0xFF; 4]
        } else {
            &[0x3a, 0x41, 0x07, 0x9c]
        });
        d.extend_from_slice(&64u16.to_be_bytes());
        d.extend_from_slice(&flags.to_be_bytes());
        d.extend_from_slice(&[0x51, 0x2f, 0x90, 0x04]);
        d.extend_from_slice(&mtus.0.to_be_bytes());
        d.extend_from_slice(&mtus.1.to_be_bytes());
        d.extend_from_slice(tail);
        d.resize(SYN_DATAGRAM, 0);
        d
    }

    #[test]
    fn syn_and_syn_ack() {
        let c = probe(&syn(true, FLAG_SYN, (1232, 1232), &[]), true);
        assert!(c.is_match() && c.done);
        assert_eq!(c.meta["rdp_udp_version"], 1);
        let s = probe(&syn(false, FLAG_SYN | FLAG_ACK, (1232, 1232), &[]), false);
        assert!(s.is_match());
        // A SYN is no server's answer and a SYN+ACK no client's opening.
        assert_eq!(
            probe(&syn(true, FLAG_SYN, (1232, 1232), &[]), false).status,
            Status::No
        );
        assert_eq!(
            probe(&syn(true, FLAG_SYN | FLAG_ACK, (1232, 1232), &[]), true).status,
            Status::No
        );
    }

    #[test]
    fn correlation_id_and_syndataex_versions() {
        // Windows 8+: correlation id, SYNEX with version 2; RDP-UDP2 (version 3) with the
        // client's cookie hash (SHA-256 of the TCP connection's security cookie).
        let mut tail = vec![0xab; 16];
        tail.extend_from_slice(&[0; 16]);
        tail.extend_from_slice(&[0, 1, 0, 2]);
        let flags = FLAG_SYN | FLAG_CORRELATION_ID | FLAG_SYNEX;
        let v2 = probe(&syn(true, flags, (1232, 1232), &tail), true);
        assert_eq!(v2.meta["rdp_udp_version"], 2);
        let mut v3 = vec![0, 1, 1, 1];
        v3.extend_from_slice(&[0x5c; 32]);
        let r = probe(&syn(true, FLAG_SYN | FLAG_SYNEX, (1132, 1232), &v3), true);
        assert_eq!(r.meta["rdp_udp_version"], 3);
        let answer = probe(
            &syn(
                false,
                FLAG_SYN | FLAG_ACK | FLAG_SYNEX,
                (1232, 1232),
                &[0, 1, 1, 1],
            ),
            false,
        );
        assert_eq!(answer.meta["rdp_udp_version"], 3);
        // An unknown version, behind and without a correlation id.
        let bad = probe(
            &syn(true, FLAG_SYN | FLAG_SYNEX, (1232, 1232), &[0, 1, 0, 9]),
            true,
        );
        assert_eq!(bad.status, Status::No);
        let mut tail = vec![0xab; 32];
        tail.extend_from_slice(&[0, 1, 0, 9]);
        assert_eq!(
            probe(&syn(true, flags, (1232, 1232), &tail), true).status,
            Status::No
        );
    }

    #[test]
    fn near_misses() {
        let ok = syn(true, FLAG_SYN, (1232, 1232), &[]);
        // Not padded to 1232, or longer.
        assert_eq!(probe(&ok[..1231], true).status, Status::No);
        assert_eq!(
            probe(&[ok.as_slice(), &[0]].concat(), true).status,
            Status::No
        );
        // MTU out of 1132..1232, data or FIN flags, an undefined flag, no SYN.
        for (flags, mtus) in [
            (FLAG_SYN, (1131, 1232)),
            (FLAG_SYN, (1232, 1233)),
            (FLAG_SYN | FLAG_DATA, (1232, 1232)),
            (FLAG_SYN | FLAG_FIN, (1232, 1232)),
            (FLAG_SYN | 0x2000, (1232, 1232)),
            (FLAG_ACK, (1232, 1232)),
        ] {
            assert_eq!(
                probe(&syn(true, flags, mtus, &[]), true).status,
                Status::No,
                "{flags:#x}"
            );
        }
        // snSourceAck other than -1 in a client SYN.
        let mut other = ok.clone();
        other[0] = 0;
        assert_eq!(probe(&other, true).status, Status::No);
        // 1232 bytes of something else: zeros, 0xFF, a DTLS ClientHello record header.
        assert_eq!(probe(&[0; SYN_DATAGRAM], true).status, Status::No);
        assert_eq!(probe(&[0xFF; SYN_DATAGRAM], true).status, Status::No);
        let mut dtls = vec![0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0xc3];
        dtls.resize(SYN_DATAGRAM, 0);
        assert_eq!(probe(&dtls, true).status, Status::No);
    }
}
