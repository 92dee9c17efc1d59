//! RTP (RFC 3550): recognised by consistency across datagrams, not by one header; and RTCP.
//!
//! A single RTP header is only "version 2 and a payload type"; a random datagram passes that one
//! time in a few dozen. Two datagrams of one direction with the same SSRC, the same payload type
//! and a sequence number that moved forward by 1..64 is the real signature of a media stream.
//!
//! `rtp` (units): MATCH when two consecutive RTP headers among the first datagrams agree so, or
//! when an RTP packet and an RTCP report multiplexed on the same port (RFC 5761) carry the same
//! SSRC. Meta: `rtp_payload_type` and `rtp_ssrc` (hex).
//!
//! `rtcp`: one compound RTCP datagram (RFC 3550 6.1), or an SRTCP one (RFC 3711 3.4).
//! Meta: `rtcp_first` ("sr", "rr"... or the packet type number), `srtcp` (true) for SRTCP.
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[
    Probe::units("rtp", probe_units).answers(answers!["rtp_ssrc", "rtp_payload_type"]),
    Probe::single("rtcp", probe_rtcp).answers(answers!["rtcp_first"]),
];

const MAX_STEP: u16 = 64;
/// Datagrams of a direction the units probe looks at.
const MAX_UNITS: usize = 8;
const MAX_COMPOUND: usize = 16;
/// HMAC-SHA1-80, -32, and 128-bit AEAD tags (RFC 3711, 7714).
const SRTCP_TAGS: [usize; 3] = [10, 4, 16];

fn be16(data: &[u8], off: usize) -> Option<u16> {
    let b = data.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(data: &[u8], off: usize) -> Option<u32> {
    let b = data.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

#[derive(Clone, Copy)]
struct Header {
    pt: u8,
    seq: u16,
    ssrc: u32,
}

/// Payload type, sequence and SSRC of an RTP v2 datagram, or None.
fn header(data: &[u8]) -> Option<Header> {
    if data.len() < 12 || data[0] >> 6 != 2 {
        return None;
    }
    let pt = data[1] & 0x7F;
    // RTCP packet types 200-204 seen through the marker bit.
    if (72..=76).contains(&pt) {
        return None;
    }
    let cc = usize::from(data[0] & 0x0F);
    if 12 + 4 * cc > data.len() {
        return None;
    }
    Some(Header {
        pt,
        seq: be16(data, 2)?,
        ssrc: be32(data, 8)?,
    })
}

/// Sender SSRC of an RTCP packet (SR, RR, SDES, BYE, APP) whose length field fits, else None.
fn rtcp_ssrc(data: &[u8]) -> Option<u32> {
    if data.len() < 8 || data[0] >> 6 != 2 || !(200..=204).contains(&data[1]) {
        return None;
    }
    let words = usize::from(be16(data, 2)?);
    if (words + 1) * 4 > data.len() {
        return None;
    }
    be32(data, 4)
}

fn rtp_meta(h: Header) -> ProbeResult {
    let mut meta = Meta::new();
    meta.insert("rtp_payload_type".into(), json!(h.pt));
    meta.insert("rtp_ssrc".into(), json!(format!("{:08x}", h.ssrc)));
    ProbeResult::hit(meta)
}

pub fn probe_units(units: &[&[u8]], _from_client: bool) -> ProbeResult {
    let first = units.get(..MAX_UNITS).unwrap_or(units);
    // Other datagrams (STUN keepalives of ICE) may sit between media packets: compare RTP ones only.
    let heads: Vec<Header> = first.iter().filter_map(|u| header(u)).collect();
    for pair in heads.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let step = b.seq.wrapping_sub(a.seq);
        if a.pt == b.pt && a.ssrc == b.ssrc && 0 < step && step <= MAX_STEP {
            return rtp_meta(a);
        }
    }
    let reports: Vec<u32> = first.iter().filter_map(|u| rtcp_ssrc(u)).collect();
    match heads.iter().find(|h| reports.contains(&h.ssrc)) {
        Some(&h) => rtp_meta(h),
        None => ProbeResult::no(),
    }
}

fn type_name(pt: u8) -> String {
    match pt {
        200 => "sr".into(),
        201 => "rr".into(),
        202 => "sdes".into(),
        203 => "bye".into(),
        204 => "app".into(),
        other => other.to_string(),
    }
}

/// SRTCP (RFC 3711 3.4): the first report's header and SSRC in clear, the rest encrypted, then
/// the E flag + 31-bit index and the authentication tag at the end.
fn srtcp(data: &[u8]) -> bool {
    if data.len() < 8 || data[0] >> 6 != 2 || !matches!(data[1], 200 | 201) {
        return false;
    }
    let Some(words) = be16(data, 2) else {
        return false;
    };
    let first = (usize::from(words) + 1) * 4;
    SRTCP_TAGS.iter().any(|&tag| {
        data.len()
            .checked_sub(tag + 4)
            .is_some_and(|at| at >= first && data.get(at).is_some_and(|b| b & 0x80 != 0))
    })
}

/// A compound RTCP datagram: version-2 packets of types 200-206 that tile it exactly, the first a
/// sender or receiver report when there are several; or an SRTCP datagram.
pub fn probe_rtcp(data: &[u8], _from_client: bool) -> ProbeResult {
    let (mut off, mut count, mut first) = (0usize, 0usize, 0u8);
    while off < data.len() && count < MAX_COMPOUND {
        let Some(&[b0, pt, hi, lo]) = data.get(off..off + 4) else {
            break;
        };
        if b0 >> 6 != 2 || !(200..=206).contains(&pt) {
            break;
        }
        if first == 0 {
            first = pt;
        }
        off += (usize::from(u16::from_be_bytes([hi, lo])) + 1) * 4;
        count += 1;
    }
    let mut meta = Meta::new();
    if off == data.len() && count > 0 && (count == 1 || matches!(first, 200 | 201)) {
        meta.insert("rtcp_first".into(), json!(type_name(first)));
        return ProbeResult::hit(meta);
    }
    if srtcp(data) {
        meta.insert("rtcp_first".into(), json!(type_name(data[1])));
        meta.insert("srtcp".into(), json!(true));
        return ProbeResult::hit(meta);
    }
    ProbeResult::no()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    #[test]
    fn python_vectors() {
        for name in ["rtp", "rtcp"] {
            crate::detect::probes::vectors::replay(name);
        }
    }

    #[test]
    fn no_panic_on_hostile_shapes() {
        for name in ["rtp", "rtcp"] {
            crate::detect::probes::vectors::never_panics(name);
        }
    }

    /// An RTP packet (RFC 3550 5.1): V=2, PCMU (0), the given sequence, 160 samples per packet.
    fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0xff; 160]);
        p
    }

    /// A receiver report (RFC 3550 6.4.2) with no report blocks, then an SDES CNAME chunk.
    fn rr_sdes(ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 201, 0x00, 0x01];
        p.extend_from_slice(&ssrc.to_be_bytes());
        // SDES: one chunk, CNAME "ab", end, padded: 4 header + 4 SSRC + 2 + 2 + 1 -> 16 bytes.
        p.extend_from_slice(&[0x81, 202, 0x00, 0x03]);
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[1, 2, b'a', b'b', 0, 0, 0, 0]);
        p
    }

    #[test]
    fn two_packets_of_one_stream() {
        let (a, b) = (rtp(0xfffe, 0xdeadbeef), rtp(0x0001, 0xdeadbeef));
        let r = probe_units(&[&a, &b], true);
        assert_eq!(r.status, Status::Match);
        assert_eq!(
            r.meta,
            json!({"rtp_payload_type": 0, "rtp_ssrc": "deadbeef"})
                .as_object()
                .cloned()
                .unwrap()
        );
        // One packet alone, or a different SSRC, is not enough.
        assert_eq!(probe_units(&[&a], true).status, Status::No);
        let c = rtp(0x0001, 0x01020304);
        assert_eq!(probe_units(&[&a, &c], true).status, Status::No);
    }

    #[test]
    fn rtp_and_rtcp_multiplexed() {
        let (a, r) = (rtp(7, 0x11223344), rr_sdes(0x11223344));
        assert_eq!(probe_units(&[&r, &a], false).status, Status::Match);
        assert_eq!(
            probe_rtcp(&r, false).meta,
            json!({"rtcp_first": "rr"}).as_object().cloned().unwrap()
        );
        // A length that overruns the datagram breaks the tiling.
        assert_eq!(probe_rtcp(&r[..r.len() - 4], false).status, Status::No);
    }

    #[test]
    fn srtcp_trailer() {
        // SR header (6 words: SSRC + sender info) in clear, 24 encrypted bytes, E|index, 10-byte tag.
        let mut p = vec![0x80, 200, 0x00, 0x06];
        p.extend_from_slice(&[0x55; 24]);
        p.extend_from_slice(&[0xaa; 24]);
        p.extend_from_slice(&[0x80, 0, 0, 1]);
        p.extend_from_slice(&[0x33; 10]);
        let r = probe_rtcp(&p, true);
        assert_eq!(
            r.meta,
            json!({"rtcp_first": "sr", "srtcp": true})
                .as_object()
                .cloned()
                .unwrap()
        );
    }
}
